import { existsSync } from 'node:fs';
import { NbdServer, NbdTlsError } from '@q/nbd';
import { listenNbd, type ListenAddress, type NbdListener } from '@q/nbd/node';
import type { BlockDevice } from '@q/raw';
import { isMemoryBacked, type LockPermissions } from '@q/raw/node';
import { CothreadDisk, LOCK_USERS, parseDiskSpec } from '@q/vkd';
import { describeError, openFailure } from '../describe-error.js';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { parseInteger } from '../numbers.js';
import { openImage } from '../open-source.js';
import { TLS_LONG_OPTIONS, TLS_USAGE, serveTlsFromArgs } from '../serve-tls.js';
import { ExitError, UsageError } from '../usage-error.js';

export const serveUsage = `serve [-r | --cow] [-f fmt] [-b addr] [-p port] [-k socket] [-x export-name] [-D description] [-t] [--aio=auto|threads|cothread] [--untrusted] ${TLS_USAGE} FILE`;

/** The IANA port of NBD; qemu-nbd's default too. */
const DEFAULT_PORT = 10809;

/**
 * `qcow serve`: qemu-nbd's flags for exporting FILE (or FILE@SNAP: read-only, or private writes with --cow) over
 * NBD on TCP (127.0.0.1:10809 unless -b/-p) or a Unix socket (-k). Unlike qemu-nbd without -t it stays up for any number of
 * clients, one after another or at once (-t is accepted for scripts written for qemu-nbd). It runs until SIGTERM
 * or SIGINT: then it stops accepting, lets running requests reply, flushes and closes the image, and exits 0.
 * With --tls-creds or --tls-psk every client must upgrade with NBD_OPT_STARTTLS first (serve-tls.ts).
 */
export async function serveCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'rf:b:p:k:x:D:ts',
    long: {
      'read-only': false,
      format: true,
      bind: true,
      port: true,
      socket: true,
      'export-name': true,
      description: true,
      persistent: false,
      snapshot: false,
      cow: false,
      aio: true,
      untrusted: false,
      ...TLS_LONG_OPTIONS,
    },
  });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const socketPath = lastValue(parsed, 'k', 'socket');
  const portText = lastValue(parsed, 'p', 'port');
  const host = lastValue(parsed, 'b', 'bind') ?? '127.0.0.1';
  const port = portText === undefined ? DEFAULT_PORT : parseInteger(portText, 'port');
  if (port < 0 || port > 65535) throw new UsageError(`Invalid port '${portText ?? ''}'`);
  if (socketPath !== undefined && (portText !== undefined || lastValue(parsed, 'b', 'bind') !== undefined)) {
    throw new UsageError('-k cannot be combined with -b or -p');
  }
  // --cow (qemu-nbd's -s/--snapshot): clients may write, the image file never changes; FILE@SNAP then starts from
  // the snapshot. Without --cow a snapshot is served read-only.
  const cow = hasFlag(parsed, 's', 'snapshot') || hasFlag(parsed, 'cow');
  if (cow && hasFlag(parsed, 'r', 'read-only')) throw new UsageError('--cow cannot be combined with -r');
  const spec = parseDiskSpec(file, existsSync);
  const readOnly = hasFlag(parsed, 'r', 'read-only') || (spec.snapshot !== undefined && !cow);

  const format = lastValue(parsed, 'f', 'format');
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') throw new UsageError(`Unknown file format '${format}'`);
  const aio = lastValue(parsed, 'aio') ?? 'auto';
  if (!['auto', 'threads', 'cothread'].includes(aio)) throw new UsageError(`Invalid aio option: ${aio}`);

  // Before the image is opened: a TLS mistake must not leave a writer's lock or a worker behind.
  const tls = await serveTlsFromArgs(parsed);

  let device: BlockDevice;
  try {
    device = await openServed(file, spec.path, aio, {
      format,
      writable: !readOnly,
      cow,
      lockUser: LOCK_USERS.export(!readOnly),
      untrusted: hasFlag(parsed, 'untrusted'),
    });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }

  const server = new NbdServer({
    device,
    name: lastValue(parsed, 'x', 'export-name') ?? '',
    readOnly,
    ...(lastValue(parsed, 'D', 'description') === undefined ? {} : { description: lastValue(parsed, 'D', 'description') }),
    ...(tls === undefined ? {} : { tls: tls.policy }),
    log: serveLog(process.env['QCOW_DEBUG'] === '1'),
  });
  const address: ListenAddress = socketPath === undefined ? { host, port } : { path: socketPath };
  let listener: NbdListener;
  try {
    listener = await listenNbd(server, address, tls === undefined ? {} : { tls: tls.credentials });
  } catch (error) {
    await device.close().catch(() => {});
    const where = socketPath ?? `${host}:${port}`;
    throw new ExitError(`Failed to listen on ${where}: ${error instanceof Error ? error.message : String(error)}`, 1);
  }

  await untilSignalled();
  await listener.close();
  try {
    await device.flush();
  } finally {
    await device.close();
  }
  return 0;
}

/**
 * Where the disk's blocking calls run, so the event loop serving clients never waits for a device:
 * - cothread: the engine on a worker thread (CothreadDisk), requests through shared memory;
 * - auto (default): files in memory (tmpfs) on the event loop itself, where a call is a page copy that cannot wait
 *   for a device and a trip to another thread would cost more than the copy; other files on the cothread;
 * - threads: the engine on the event loop, its file calls on libuv's thread pool (as qemu-nbd's --aio=threads).
 * `pnpm bench:nbd` measures the three against qemu-nbd: see the README.
 */
function openServed(
  file: string,
  path: string,
  aio: string,
  options: { format: string | undefined; writable: boolean; cow: boolean; lockUser: LockPermissions; untrusted: boolean },
): Promise<BlockDevice> {
  if (aio === 'cothread' || (aio === 'auto' && !isMemoryBacked(path))) return CothreadDisk.open(file, options);
  return openImage(file, { ...options, blockingIo: aio === 'auto' ? 'memory' : false });
}

/**
 * Clients TLS refused are always reported, as qemu-nbd reports failed negotiations: a refused identity in qemu's
 * form is what goes into --tls-authz. Everything else (dropped connections, failed requests) only with QCOW_DEBUG=1.
 */
function serveLog(debug: boolean): (message: string, error?: unknown) => void {
  return (message, error) => {
    if (debug || error instanceof NbdTlsError) process.stderr.write(`qcow serve: ${message}\n`);
  };
}

/** Resolves on the first SIGTERM or SIGINT, then takes its handlers back so nothing keeps the process alive. */
function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
