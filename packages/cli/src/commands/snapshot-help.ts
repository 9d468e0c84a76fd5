/*
 * snapshot's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const snapshotUsage = 'snapshot [-q] [-f fmt] [-U] [--untrusted] [-l | -a SNAPSHOT | -c SNAPSHOT | -d SNAPSHOT] FILE';

export const snapshotHelp = `Manages internal snapshots, as qemu-img snapshot:
  -l                   list the snapshots (the default)
  -c SNAPSHOT          create a snapshot of the current state
  -a SNAPSHOT          apply a snapshot (by id, then by name): the disk returns to it
  -d SNAPSHOT          delete a snapshot
  -q                   print nothing but errors
  -f FMT               qcow2 or raw (default: probed)
  -U, --force-share    list beside a writer that holds the image
  --untrusted          the image comes from someone untrusted: backing and data files must stay in its directory,
                       backing files are never probed, URLs are refused, metadata limits are tighter`;
