/*
 * measure's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const measureUsage = 'measure [--output=human|json] [-O qcow2|raw] [-o options] [--size N | [-f fmt] [-l snapshot_param] [-U] FILE]';

export const measureHelp = [
  '  --output=human|json  output format (default human)',
  '  -O FMT               format of the image to measure for: qcow2 or raw (default raw)',
  '  -o OPTIONS           creation options of that image (cluster_size, refcount_bits, extended_l2, compat, preallocation, ...)',
  '  --size N             measure an empty image of N bytes instead of FILE',
  '  -f FMT               format of FILE (default: probed)',
  '  -l SNAPSHOT_PARAM    measure an internal snapshot of FILE (snapshot.id=I,snapshot.name=N or an id or name)',
  '  -U                   open FILE read-only beside a writer (force-share)',
].join('\n');
