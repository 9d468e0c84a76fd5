/*
 * amend's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const amendUsage = 'amend [-f fmt] [-p] [-q] [--force] -o options FILE';

export const amendHelp = [
  '  -o OPTIONS   what to change: compat=0.10|1.1, lazy_refcounts=on|off, refcount_bits=N, data_file=NAME, size=N',
  '  -f FMT       format of FILE (only qcow2 images can be amended)',
  '  -p           show progress (accepted; amend prints none on a pipe)',
  '  -q           quiet',
  '  --force      accepted, as qemu-img (no amendment here needs it)',
].join('\n');
