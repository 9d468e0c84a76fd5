/*
 * create's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const createUsage = 'create [-f qcow2|raw] [-o options] [-b backing_file -F backing_fmt] [-u] [-q] FILE [SIZE]';

export const createHelp = `Creates a qcow2 or raw image, as qemu-img create:
  -f FMT          qcow2 or raw (default raw)
  -o OPTIONS      comma-separated creation options (-o help lists them for the -f format)
  -b BACKING      backing file, resolved against the new image's directory
  -F FMT          the backing file's format (required with -b, as qemu-img 7.2)
  -u              do not open the backing file (unsafe: it need not exist; SIZE is then required)
  -q              do not print the "Formatting ..." line
  SIZE            bytes, or with a k, M, G, T, P or E suffix (powers of 1024); taken from BACKING when omitted`;
