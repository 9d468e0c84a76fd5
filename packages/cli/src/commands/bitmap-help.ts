/*
 * bitmap's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const bitmapUsage =
  'bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b SOURCE_FILE [-F SOURCE_FMT]] [-g GRANULARITY] [-f fmt] FILE BITMAP';

export const bitmapHelp = `Manages the persistent dirty bitmaps of a qcow2 image, as qemu-img bitmap. Actions run in the order given;
each is stored before the next runs:
  --add                add BITMAP, clean and enabled (with --disable after it: disabled)
  --remove             remove BITMAP and free its clusters
  --clear              clear every bit of BITMAP
  --enable, --disable  whether BITMAP records the writes to the disk
  --merge SOURCE       set in BITMAP every bit set in bitmap SOURCE (of this image, or of -b's)
  -b SOURCE_FILE       the image --merge reads SOURCE from (opened read-only)
  -F SOURCE_FMT        SOURCE_FILE's format (qcow2)
  -g GRANULARITY       bytes of the disk per bit for --add: a power of two from 512 to 2G, suffixes k, M, G
                       (default: the cluster size, at least 4k and at most 64k)
  -f FMT               FILE's format (qcow2)`;
