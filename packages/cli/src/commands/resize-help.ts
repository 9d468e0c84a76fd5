/*
 * resize's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const resizeUsage = 'resize [-f fmt] [--preallocation=off|metadata|falloc|full] [-q] [--shrink] FILE [+|-]SIZE';

export const resizeHelp = [
  '  -f FMT                  format of FILE: qcow2 or raw (default: probed)',
  '  --preallocation=MODE    allocate the new space when growing: off (default), metadata (qcow2 only), falloc, full',
  '  --shrink                allow the new size to be smaller (the data past the new end is lost)',
  '  -q                      quiet: no "Image resized." line',
  '  SIZE                    the new size, or +N / -N relative to the current one (k, M, G, T, P, E suffixes)',
].join('\n');
