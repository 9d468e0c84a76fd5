import { rm } from 'node:fs/promises';
import { NbdServer, NbdTlsError } from '@q/nbd';
import { listenNbd, type NbdListener } from '@q/nbd/node';
import { isDiskError, type BlockDevice } from '@q/raw';
import { isMemoryBacked } from '@q/raw/node';
import { posixSupport } from '@q/posix';
import { CothreadDisk, LOCK_USERS } from '@q/vkd';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeError, openFailure, systemErrorText } from '../describe-error.js';
import { withCacheMode } from '../devices/cache-mode-device.js';
import { DirtyMarkingDevice } from '../devices/dirty-marking-device.js';
import { withDiscardModes } from '../devices/discard-mode-device.js';
import { openImage } from '../open-source.js';
import { forkChannel, serveInBackground } from '../serve/forked-server.js';
import { writePidFile } from '../serve/pid-file.js';
import { loadServedBitmaps, type ServedBitmaps } from '../serve/serve-bitmaps.js';
import { parseServeOptions, type ServeOptions } from '../serve/serve-options.js';
import { serveTlsFromArgs, type ServeTls } from '../serve-tls.js';
import { ExitError } from '../usage-error.js';
import { writeErr } from '../process-output.js';

/**
 * `qcow serve`: qemu-nbd's flags, defaults and messages for exporting FILE (or FILE@SNAP) over NBD on TCP
 * (127.0.0.1:10809 unless -b/-p) or a Unix socket (-k). As qemu-nbd, it serves one client at a time (-e) and
 * exits when the last client leaves unless -t. It runs until then or until SIGTERM or SIGINT: it stops accepting,
 * lets running requests reply, flushes and closes the image, and exits 0. With --fork it does all that in a
 * background process and returns once that process listens.
 */
export async function serveCommand(args: string[]): Promise<number> {
  const options = parseServeOptions(args);
  const channel = options.fork ? forkChannel() : undefined;
  if (options.fork && channel === undefined) return serveInBackground(args);

  let running: { device: BlockDevice; server: NbdServer; listener: NbdListener };
  try {
    // Before the image is opened: a TLS mistake must not leave a writer's lock or a worker behind.
    const tls = await serveTlsFromArgs(options.parsed);
    running = await startServing(options, tls);
  } catch (error) {
    await channel?.failed(error instanceof ExitError ? error.message : describeError(error, options.file));
    throw error;
  }
  await channel?.listening();

  const { device, server, listener } = running;
  const signalled = untilSignalled();
  try {
    await Promise.race([signalled.promise, server.finished]);
    // Signals keep their handler until the image is closed: one arriving while the server winds down (after its
    // last client, or a second SIGTERM) must not kill it between the flush and the close, as in qemu-nbd.
    await listener.close();
    try {
      await device.flush();
    } finally {
      await device.close();
    }
  } finally {
    signalled.closed();
  }
  return 0;
}

/** Opens the image (with the cache and discard modes on top), writes the pid file, and listens. */
async function startServing(options: ServeOptions, tls: ServeTls | undefined): Promise<{ device: BlockDevice; server: NbdServer; listener: NbdListener }> {
  let device: BlockDevice;
  try {
    device = await openServed(options);
  } catch (error) {
    if (options.snapshot !== undefined && isDiskError(error) && error.code === 'E_NO_SUCH') {
      throw new ExitError("Failed to load snapshot: Can't find snapshot", 1);
    }
    throw new ExitError(openFailure(error, options.file), 1);
  }
  const bitmaps = await bitmapsOf(device, options);
  // Marking sits below the discard mode: a discard --discard=ignore drops never reaches a bitmap (as in QEMU).
  if (bitmaps.marked.length > 0) device = new DirtyMarkingDevice(device, bitmaps.marked);
  device = withCacheMode(withDiscardModes(device, { discard: options.discard, detectZeroes: options.detectZeroes }), options.cache);

  const server = new NbdServer({
    device,
    name: options.exportName,
    readOnly: options.readOnly,
    ...(options.description === undefined ? {} : { description: options.description }),
    maxConnections: options.shared,
    persistent: options.persistent,
    ...(tls === undefined ? {} : { tls: tls.policy }),
    log: serveLog(process.env['QCOW_DEBUG'] === '1'),
    allocationDepth: options.allocationDepth,
    dirtyBitmaps: bitmaps.sources,
  });
  // The pid file is written before the socket accepts anyone: whoever sees the server answer may read it at once.
  if (options.pidFile !== undefined) {
    try {
      await writePidFile(options.pidFile);
    } catch (error) {
      await device.close().catch(() => {});
      throw error;
    }
  }
  let listener: NbdListener;
  try {
    listener = await listenNbd(server, options.address, { ...(tls === undefined ? {} : { tls: tls.credentials }), pollMicros: pollMicros() });
  } catch (error) {
    await device.close().catch(() => {});
    if (options.pidFile !== undefined) await rm(options.pidFile, { force: true }).catch(() => {});
    throw new ExitError(listenFailure(options.address, error), 1);
  }
  return { device, server, listener };
}

/** `-B`'s bitmaps, read before any client can write; a failure closes the image first (no lock left behind). */
async function bitmapsOf(device: BlockDevice, options: ServeOptions): Promise<ServedBitmaps> {
  if (options.bitmaps.length === 0) return { sources: [], marked: [] };
  try {
    return await loadServedBitmaps(device, options.path, options.bitmaps, options.cow);
  } catch (error) {
    await device.close().catch(() => {});
    throw error instanceof ExitError ? error : new ExitError(openFailure(error, options.file), 1);
  }
}

/** qemu-nbd's words for the two ways listening fails. */
function listenFailure(address: ServeOptions['address'], error: unknown): string {
  if (!('path' in address)) return `Failed to find an available port: ${systemErrorText(error)}`;
  // libuv reports a socket path in a missing directory as EACCES; bind(2), and so qemu-nbd, say ENOENT.
  const missingDirectory = (error as NodeJS.ErrnoException).code === 'EACCES' && !existsSync(dirname(address.path));
  return `Failed to bind socket to ${address.path}: ${missingDirectory ? 'No such file or directory' : systemErrorText(error)}`;
}

/**
 * Where the disk's blocking calls run, so the event loop serving clients never waits for a device:
 * - auto (default): the engine on the event loop; a call blocks it only where it cannot wait for a device (files in
 *   memory; page-cache hits of reads, found with preadv2's RWF_NOWAIT; small writes while none stalls), everything
 *   else runs on libuv's thread pool. Where preadv2 cannot be called (not Linux) files on a disk go to the cothread.
 * - cothread: the engine on a worker thread (CothreadDisk), requests through shared memory;
 * - threads: the engine on the event loop, its file calls on libuv's thread pool (as qemu-nbd's --aio=threads).
 * `pnpm bench:nbd` measures the three against qemu-nbd: see the README.
 */
function openServed(options: ServeOptions): Promise<BlockDevice> {
  const { file, aio } = options;
  const open = {
    format: options.format,
    writable: !options.readOnly,
    cow: options.cow,
    ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
    // An NBD export fixes the disk's size for its clients: nobody may resize the image (qemu-nbd's locks).
    lockUser: LOCK_USERS.export(!options.readOnly),
    untrusted: options.untrusted,
  };
  if (aio === 'cothread' || (aio === 'auto' && !posixSupport().available && !isMemoryBacked(options.path))) {
    return CothreadDisk.open(file, open);
  }
  return openImage(file, { ...open, blockingIo: aio === 'auto' ? 'nowait' : false });
}

/**
 * How long the event loop polls for the next request after a reply (@q/nbd busy-poll.ts): 100 us unless
 * QCOW_POLL_US says otherwise (0 turns it off). qemu-nbd has no flag for its own polling, so neither does serve.
 */
function pollMicros(): number {
  const text = process.env['QCOW_POLL_US'];
  const value = text === undefined || text === '' ? 100 : Number(text);
  return Number.isFinite(value) && value >= 0 ? Math.min(value, 10_000) : 100;
}

/** Refused TLS clients are always reported (as qemu-nbd does); everything else only with QCOW_DEBUG=1. */
function serveLog(debug: boolean): (message: string, error?: unknown) => void {
  return (message, error) => {
    if (debug || error instanceof NbdTlsError) writeErr(`qcow serve: ${message}\n`);
  };
}

/**
 * Resolves on the first SIGTERM or SIGINT; later ones are ignored while the server winds down. Once `closed` says
 * the image is closed, a signal ends the process at once with success: nothing is left to lose, and the process
 * may still be finishing (a worker thread stopping) when a script that saw the server go sends SIGTERM anyway.
 * Signal handlers do not keep the process alive.
 */
function untilSignalled(): { promise: Promise<void>; closed: () => void } {
  let stop: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const exitNow = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const closed = (): void => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.on('SIGTERM', exitNow);
    process.on('SIGINT', exitNow);
  };
  return { promise, closed };
}
