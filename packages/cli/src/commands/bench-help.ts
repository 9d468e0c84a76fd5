/*
 * bench's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const benchUsage =
  'bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [--no-drain] [-o offset] [--pattern=P] [-q] [-s size] [-S step] [-w] [-U] FILE';

export const benchHelp = `Times many reads or writes, as qemu-img bench:
  -c COUNT             number of requests (default 75000)
  -d DEPTH             requests in flight (default 64)
  -f FMT               qcow2 or raw (default: probed)
  --flush-interval=N   flush every N requests (writes only)
  --no-drain           do not wait for requests in flight before a flush (needs --flush-interval)
  -i AIO               threads (Node's thread pool), native or io_uring (blocking calls on the main thread)
  -o OFFSET            first request's offset (default 0)
  --pattern=BYTE       byte written by -w (default 0)
  -q                   print nothing
  -s SIZE              bytes per request (default 4096)
  -S STEP              distance between requests (default SIZE)
  -w                   write instead of read
  -U, --force-share    read beside a writer that holds the image
  --untrusted          the image comes from someone untrusted: backing and data files must stay in its directory,
                       backing files are never probed, URLs are refused, metadata limits are tighter`;
