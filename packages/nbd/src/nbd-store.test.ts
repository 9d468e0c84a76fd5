import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '@q/qcow2';
import { isDiskError, routeStore, type BlockDevice } from '@q/raw';
import { expectSameBytes } from '@q/raw/conformance';
import { nodeFileStore } from '@q/raw/node';
import { convertToRaw, freePort, pattern, run, scratchDir, startQemuNbd, type RunningServer } from './nbd-test-servers.js';
import { nbdStore } from './nbd-store.js';

const TIMEOUT = 60_000;

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; file: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (!isDiskError(error)) throw error;
    expect(error.message).not.toContain('\n');
    return { code: error.code, message: error.message, file: error.file };
  }
  throw new Error('expected a failure');
}

async function readAll(device: BlockDevice): Promise<Uint8Array> {
  const bytes = new Uint8Array(device.size);
  await device.read(bytes, 0);
  return bytes;
}

describe('nbdStore against qemu-nbd', { timeout: TIMEOUT }, () => {
  const scratch = scratchDir();
  const image = join(scratch.dir, 'image.qcow2');
  const servers: RunningServer[] = [];
  let guest: Uint8Array;
  // One image, served three ways: its own bytes over TCP, its guest bytes over TCP and over a Unix socket.
  let rawServer: RunningServer;
  let guestServer: RunningServer;
  let unixServer: RunningServer;

  beforeAll(async () => {
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', image, '8M']);
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 70000', '-c', 'write -P 0x22 3M 1M', '-c', 'write -z 3500000 8192', '-c', 'write -P 0x33 8380000 8608', image]);
    run('qemu-img', ['convert', '-c', '-O', 'qcow2', image, `${image}.c`]);
    run('mv', [`${image}.c`, image]);
    guest = convertToRaw(image, 'qcow2', scratch.dir);
    rawServer = await startQemuNbd(image, { port: await freePort() }, { format: 'raw', readOnly: true });
    guestServer = await startQemuNbd(image, { port: await freePort() }, { format: 'qcow2', exportName: 'guest', readOnly: true });
    unixServer = await startQemuNbd(image, { socket: join(scratch.dir, 'nbd.sock') }, { format: 'qcow2', exportName: 'guest', readOnly: true });
    servers.push(rawServer, guestServer, unixServer);
  }, TIMEOUT);

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    scratch.remove();
  });

  it('opens a (compressed) qcow2 image served raw through openImage, with the bytes qemu-img gives', async () => {
    const device = await openImage(rawServer.uri, { store: nbdStore() });
    expect(device.format).toBe('qcow2');
    expect(device.size).toBe(8 << 20);
    expectSameBytes(await readAll(device), guest, 'guest bytes read through the qcow2 engine over NBD');
    await device.close();
  });

  it('reads guest bytes served by qemu-nbd -f qcow2 (TCP and Unix socket) as a raw image', async () => {
    for (const uri of [guestServer.uri, unixServer.uri, unixServer.uri.replace(/^nbd\+unix:\/\/\/guest\?socket=(.*)$/, 'nbd:unix:$1:exportname=guest')]) {
      const device = await openImage(uri, { store: nbdStore() });
      expect(device.format).toBe('raw');
      expectSameBytes(await readAll(device), guest, uri);
      await device.close();
    }
  });

  it('reaches NBD exports through routeStore beside local files', async () => {
    const store = routeStore({ nbd: nbdStore(), 'nbd+unix': nbdStore() }, nodeFileStore());
    const device = await openImage(unixServer.uri, { store });
    expectSameBytes(await readAll(device), guest, 'through the router');
    await device.close();
    expect(await store.exists(guestServer.uri)).toBe(true);
    expect(await store.exists(image)).toBe(true);
  });

  it('says an unknown export is not found, in qemu-img words, naming the URI', async () => {
    const uri = guestServer.uri.replace(/guest$/, 'nosuch');
    expect(await failure(nbdStore().open(uri))).toEqual({
      code: 'E_NOT_FOUND',
      message: "Requested export not available: server reported: export 'nosuch' not present",
      file: uri,
    });
    expect(await nbdStore().exists(uri)).toBe(false);
  });

  it('reports a refused connection and a missing socket as qemu-img does', async () => {
    const port = await freePort();
    expect(await failure(nbdStore().open(`nbd://127.0.0.1:${port}/x`))).toEqual({
      code: 'E_IO',
      message: `Failed to connect to '127.0.0.1:${port}': Connection refused`,
      file: `nbd://127.0.0.1:${port}/x`,
    });
    const socket = join(scratch.dir, 'missing.sock');
    expect(await failure(nbdStore().open(`nbd+unix:///?socket=${socket}`))).toMatchObject({
      code: 'E_NOT_FOUND',
      message: `Failed to connect to '${socket}': No such file or directory`,
    });
    expect(await nbdStore().exists(`nbd://127.0.0.1:${port}/x`)).toBe(false);
    expect(await failure(nbdStore().open('nbd://127.0.0.1:0/x'))).toMatchObject({ code: 'E_INVALID' });
  });

  it('refuses to open a read-only export writable or to empty an export; a lock is the server\'s business', async () => {
    expect(await failure(nbdStore().open(guestServer.uri, { writable: true }))).toMatchObject({ code: 'E_READ_ONLY', file: guestServer.uri });
    expect(await failure(openImage(guestServer.uri, { store: nbdStore(), writable: true }))).toMatchObject({ code: 'E_READ_ONLY' });
    const locked = await nbdStore().open(guestServer.uri, { lock: { take: 1, unshare: 0 } });
    expect(locked.lock).toBeUndefined();
    await locked.close();
    expect(await failure(nbdStore().open(guestServer.uri, { writable: true, truncate: true }))).toMatchObject({ code: 'E_UNSUPPORTED' });
  });

  it('identifies every spelling of an export by one URI, and refuses relative names recorded on an export', async () => {
    const store = nbdStore();
    const port = new URL(guestServer.uri.replace(/^nbd:/, 'http:')).port;
    for (const name of [guestServer.uri, `nbd:127.0.0.1:${port}:exportname=guest`, `nbd+tcp://127.0.0.1:${port}/gu%65st`]) {
      expect(await store.identify(name)).toBe(`nbd://127.0.0.1:${port}/guest`);
    }
    expect(() => store.resolve(guestServer.uri, 'base.qcow2')).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
    expect(store.resolve(guestServer.uri, 'nbd://h/other')).toBe('nbd://h/other');
    expect(store.capabilities).toEqual({ write: true, lock: false, deallocate: true });
  });

  it('writes through the qcow2 engine into an image served raw: in place when preallocated, a clear error when it must grow', async () => {
    const dir = scratchDir();
    const preallocated = join(dir.dir, 'preallocated.qcow2');
    const sparse = join(dir.dir, 'sparse.qcow2');
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', preallocated, '4M']);
    run('qemu-img', ['create', '-q', '-f', 'qcow2', sparse, '4M']);
    const inPlace = await startQemuNbd(preallocated, { port: await freePort() }, { format: 'raw' });
    const growing = await startQemuNbd(sparse, { port: await freePort() }, { format: 'raw' });
    servers.push(inPlace, growing);
    const device = await openImage(inPlace.uri, { store: nbdStore(), writable: true });
    await device.write(pattern(100_000, 3), 12_345);
    await device.flush();
    await device.close();
    // An export has a fixed size: the engine's first allocation past its end fails, naming the export.
    const cannotGrow = await openImage(growing.uri, { store: nbdStore(), writable: true });
    expect(await failure(cannotGrow.write(pattern(4096, 4), 0))).toMatchObject({ code: 'E_UNSUPPORTED', file: growing.uri });
    await cannotGrow.close().catch(() => undefined);
    await Promise.all([inPlace.stop(), growing.stop()]);
    run('qemu-img', ['check', preallocated]);
    run('qemu-img', ['check', sparse]);
    const expected = new Uint8Array(4 << 20);
    expected.set(pattern(100_000, 3), 12_345);
    expectSameBytes(convertToRaw(preallocated, 'qcow2', dir.dir), expected, 'written through the engine over NBD');
    dir.remove();
  });
});
