/*
 * dd's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const ddUsage = 'dd [-f fmt] [-O output_fmt] [-U] [--untrusted] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output';

export const ddHelp = `Copies part of an image into a new image, as qemu-img dd:
  -f FMT               input format (default: probed)
  -O FMT               output format, raw (default) or qcow2; the output is created (replaced if it exists)
  -U, --force-share    read beside a writer that holds the input
  --untrusted          the input comes from someone untrusted (see qcow info --help)
  bs=BYTES             read and write up to BYTES bytes at a time (default 512; 1 to 2147483647)
  count=N              copy only N input blocks
  skip=N               skip N bs-sized blocks at the start of input
  if=FILE              read from FILE
  of=FILE              write to FILE
Sizes take k, M, G, T, P or E suffixes (powers of 1024).`;
