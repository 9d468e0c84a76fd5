/*
 * rebase's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const rebaseUsage = 'rebase [-f fmt] [-t cache] [-T src_cache] [-p] [-q] [-u] [-U] -b backing_file [-F backing_fmt] FILE';

export const rebaseHelp = [
  '  -b backing_file  the new backing file; "" removes it. A relative name is relative to FILE\'s directory',
  '  -F backing_fmt   format of the new backing file (qcow2 or raw); required unless -b ""',
  '  -u               unsafe: only rewrite the name (the backing files are not opened and need not exist)',
  '  -f fmt           format of FILE (default: probed)',
  '  -p               show progress',
  '  -q               quiet',
  '  -t cache         cache mode of FILE, -T src_cache of the backing files (accepted; every write is flushed before the header changes)',
  '  -U               force share (accepted, as qemu-img 7.2, with no effect on the locks)',
].join('\n');
