/*
 * serve's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

/** The TLS flags' part of the usage line (serve-tls.ts reads them; this file stays free of node:tls). */
const TLS_USAGE = '[--tls-creds DIR [--tls-verify-peer=on|off] | --tls-psk FILE|DIR] [--tls-authz IDENTITY]...';

export const serveUsage =
  'serve [-r | -s | --cow] [-l SNAPSHOT_PARAM] [-f fmt] [-b addr] [-p port | -k socket] [-x export-name] [-D description] ' +
  '[-e shared] [-t] [-A] [-B bitmap]... [--fork] [--pid-file=PATH] [-n | --cache=none|writeback|writethrough|directsync|unsafe] ' +
  `[--discard=ignore|unmap] [--detect-zeroes=off|on|unmap] [--aio=auto|threads|cothread] [--untrusted] ${TLS_USAGE} FILE`;

export const serveHelp = `Exports FILE over NBD, as qemu-nbd does:
  -r, --read-only          export read-only
  -s, --snapshot, --cow    clients may write; writes go to a temporary overlay, FILE never changes
  -l, --load-snapshot=SNAPSHOT_PARAM
                           export an internal snapshot read-only: 'snapshot.id=[ID],snapshot.name=[NAME]' or
                           '[ID_OR_NAME]' (FILE@SNAP does the same)
  -f, --format=FMT         qcow2 or raw (default: probed)
  -b, --bind=ADDR          address to listen on (default 127.0.0.1; qemu-nbd: 0.0.0.0)
  -p, --port=PORT          TCP port (default 10809)
  -k, --socket=PATH        listen on a Unix socket instead (a stale one left by a killed server is replaced)
  -x, --export-name=NAME   export name (default: the empty name)
  -D, --description=TEXT   export description
  -e, --shared=NUM         clients served at once (default 1; 0: any number); more wait unanswered
  -t, --persistent         keep serving after the last client left (default: exit then)
  -A, --allocation-depth   offer the qemu:allocation-depth metadata context: per extent, the backing chain layer
                           that allocates it (1: FILE, 2: its backing file, ...; 0: none; with --cow the overlay
                           is 1)
  -B, --bitmap=NAME        offer the persistent dirty bitmap NAME as qemu:dirty-bitmap:NAME (dirty extents are
                           1); looked up in FILE, then down its backing chain; repeatable. Writes of this session
                           mark an enabled bitmap of FILE (not with --cow, nor a backing file's), in memory only
      --fork               run in the background; return once the server listens
      --pid-file=PATH      write the server's pid to PATH (there once it listens)
  -n, --nocache            --cache=none
      --cache=MODE         writeback (default), writethrough (each write durable before its reply), unsafe
                           (flushes ignored), none (= writeback), directsync (= writethrough); none and
                           directsync do not bypass the host page cache here (no O_DIRECT)
      --discard=MODE       ignore (default: trims succeed and do nothing) or unmap
      --detect-zeroes=MODE off (default), on (writes of zeros become zero writes), unmap (and may free space:
                           needs --discard=unmap before it)
      --aio=MODE           auto (default), threads or cothread: where the disk's blocking calls run
      --untrusted          the image comes from someone untrusted: its backing and data files must stay in its
                           directory, backing files are never probed, URLs are refused, metadata limits are tighter
      --tls-creds=DIR      require TLS with x509 credentials (ca-cert.pem, server-cert.pem, server-key.pem)
      --tls-verify-peer=on|off
                           require a client certificate signed by the CA (default on)
      --tls-psk=FILE|DIR   require TLS with pre-shared keys (psktool's username:hexkey lines, or DIR/keys.psk)
      --tls-authz=IDENTITY serve only this client (a certificate's distinguished name, or a PSK username);
                           repeatable
SIGTERM or SIGINT: stop accepting, let running requests reply, flush, close and exit 0.`;
