/*
 * info's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const infoUsage = 'info [--output=human|json] [--backing-chain] [-f fmt] [-U] [--untrusted] FILE';

export const infoHelp = `Describes an image, as qemu-img info:
  --output=FMT         human (default) or json (qemu-img's keys)
  --backing-chain      describe every layer of the backing chain
  -f FMT               qcow2 or raw (default: probed)
  -U, --force-share    read beside a writer that holds the image
  --untrusted          the image comes from someone untrusted: backing and data files must stay in its directory,
                       backing files are never probed, URLs are refused, metadata limits are tighter`;
