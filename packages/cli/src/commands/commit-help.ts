/*
 * commit's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const commitUsage = 'commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] FILE';

export const commitHelp = [
  '  -b base        the layer to commit into (default: FILE\'s backing file); a name as FILE records it, or a path',
  '                 relative to FILE\'s directory. Implies -d: the layers above it are left as they were',
  '  -d             do not empty FILE afterwards',
  '  -f fmt         format of FILE (default: probed)',
  '  -p             show progress',
  '  -q             quiet (no "Image committed.")',
  '  -t cache       cache mode (accepted; the base is flushed before FILE is emptied)',
  '  -r rate_limit  accepted for compatibility, not applied',
].join('\n');
