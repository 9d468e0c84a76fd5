/*
 * check's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const checkUsage = 'check [-q] [-f fmt] [--output=human|json] [-r leaks|all] [-U] FILE';

export const checkHelp = `Checks a qcow2 image's metadata, as qemu-img check:
  -q                   print nothing but errors
  -f FMT               qcow2 or raw (raw has nothing to check: exit 63)
  --output=FMT         human (default) or json
  -r leaks|all         repair leaked clusters, or everything repairable
  -U, --force-share    check beside a writer that holds the image (not with -r)
Exit codes: 0 clean, 1 the check could not run, 2 corruptions, 3 leaks only.`;
