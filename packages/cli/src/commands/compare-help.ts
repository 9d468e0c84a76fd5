/*
 * compare's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const compareUsage = 'compare [-f fmt] [-F fmt] [-s] [-q] [-p] [-U] [--untrusted] FILE1 FILE2';

export const compareHelp = `Compares the guest contents of two images, as qemu-img compare:
  -f FMT               format of FILE1 (and of FILE2 unless -F)
  -F FMT               format of FILE2
  -s                   strict: images of different sizes or allocation differ
  -q                   print nothing; the exit code says it (0 same, 1 different, 2 error)
  -p                   accepted for qemu-img compatibility (no progress is shown)
  -U, --force-share    read beside a writer that holds the images
  --untrusted          the image comes from someone untrusted: backing and data files must stay in its directory,
                       backing files are never probed, URLs are refused, metadata limits are tighter`;
