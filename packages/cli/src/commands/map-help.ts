/*
 * map's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const mapUsage = 'map [--output=human|json] [-f fmt] [--start-offset=OFFSET] [--max-length=LEN] [-U] [--untrusted] FILE';

export const mapHelp = `Lists where the guest bytes come from, as qemu-img map:
  --output=FMT         human (default) or json (start, length, depth, present, zero, data, offset)
  -f FMT               qcow2 or raw (default: probed)
  --start-offset=OFF   start at this guest offset
  --max-length=LEN     map at most LEN bytes
  -U, --force-share    read beside a writer that holds the image
  --untrusted          the image comes from someone untrusted: backing and data files must stay in its directory,
                       backing files are never probed, URLs are refused, metadata limits are tighter`;
