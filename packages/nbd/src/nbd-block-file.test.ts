import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isDiskError } from '@q/raw';
import { expectSameBytes } from '@q/raw/conformance';
import { FakeServer } from './fake-nbd-server.js';
import { NbdBlockFile } from './nbd-block-file.js';
import { convertToRaw, freePort, pattern, run, scratchDir, startNbdkit, startQemuNbd, type RunningServer } from './nbd-test-servers.js';
import { openNbdFile } from './node-nbd-client.js';
import { NBD_FLAG_HAS_FLAGS, NBD_FLAG_SEND_WRITE_ZEROES } from './protocol.js';

const TIMEOUT = 60_000;
const MiB = 1 << 20;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isDiskError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

describe('NbdBlockFile against real servers', { timeout: TIMEOUT }, () => {
  const scratch = scratchDir();
  const servers: RunningServer[] = [];
  const start = async (server: Promise<RunningServer>): Promise<RunningServer> => {
    const running = await server;
    servers.push(running);
    return running;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });
  afterAll(() => scratch.remove());

  it('writes into an nbdkit memory export, split at 32 MiB, and nbdcopy reads back what was written', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['memory', '34M']));
    const file = await openNbdFile(server.uri, { writable: true });
    expect(file.capabilities).toEqual({ writable: true, sparse: false, deallocate: true });
    expect(await file.size()).toBe(34 * MiB);
    const expected = new Uint8Array(34 * MiB);
    // One write and one read larger than the 32 MiB payload limit, and small writes at odd offsets.
    const big = pattern(32 * MiB + 5, 1);
    await file.write(big, 3);
    expected.set(big, 3);
    for (const [offset, length, seed] of [[33 * MiB + 1, 4095, 2], [34 * MiB - 10, 10, 3], [0, 1, 4]] as const) {
      const bytes = pattern(length, seed);
      await file.write(bytes, offset);
      expected.set(bytes, offset);
    }
    await file.flush();
    const copy = join(scratch.dir, 'memory.raw');
    run('nbdcopy', [server.uri, copy]);
    expectSameBytes(new Uint8Array(readFileSync(copy)), expected, 'nbdcopy of the export');
    const back = new Uint8Array(34 * MiB);
    expect(await file.read(back, 0)).toBe(34 * MiB);
    expectSameBytes(back, expected, 'read back through the client');
    await file.close();
  });

  it('reads short only at the end, refuses to grow or shrink, and fails cleanly after close', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['memory', '1M']));
    const file = await openNbdFile(server.uri, { writable: true });
    await file.write(pattern(100, 5), MiB - 100);
    const tail = new Uint8Array(4096).fill(0xee);
    expect(await file.read(tail, MiB - 100)).toBe(100);
    expectSameBytes(tail.subarray(0, 100), pattern(100, 5));
    expect(tail[100]).toBe(0xee);
    expect(await file.read(tail, MiB)).toBe(0);
    expect(await file.read(tail, 2 ** 40)).toBe(0);
    expect(await codeOf(file.write(new Uint8Array(2), MiB - 1))).toBe('E_UNSUPPORTED');
    await file.truncate(MiB);
    expect(await codeOf(file.truncate(2 * MiB))).toBe('E_UNSUPPORTED');
    await file.close();
    expect(await codeOf(file.read(tail, 0))).toBe('E_IO');
  });

  it('flushes with NBD_CMD_FLUSH and deallocates with WRITE_ZEROES without NO_HOLE (trim=1 in the server log)', async () => {
    const log = join(scratch.dir, 'nbdkit.log');
    const server = await start(startNbdkit({ port: await freePort() }, ['--filter=log', 'memory', '1M', `logfile=${log}`]));
    const file = await openNbdFile(server.uri, { writable: true });
    await file.write(pattern(256 * 1024, 6), 0);
    await file.flush();
    expect(await file.deallocate(64 * 1024, 128 * 1024)).toBe(true);
    const all = new Uint8Array(256 * 1024);
    await file.read(all, 0);
    expectSameBytes(all, pattern(256 * 1024, 6).fill(0, 64 * 1024, 192 * 1024), 'after deallocate');
    await file.close();
    await server.stop();
    const text = readFileSync(log, 'utf8');
    expect(text).toMatch(/Flush id=\d+/);
    expect(text).toMatch(/Zero id=\d+ offset=0x10000 count=0x20000 trim=1 fua=0 fast=0/);
  });

  it('honours a 4 KiB minimum block: unaligned reads, writes and zeroes go as whole blocks, none is lost', async () => {
    const server = await start(
      startNbdkit({ port: await freePort() }, [
        '--filter=blocksize-policy',
        'memory',
        '1M',
        'blocksize-minimum=4096',
        'blocksize-preferred=65536',
        'blocksize-maximum=65536',
        'blocksize-error-policy=error',
      ]),
    );
    const file = await openNbdFile(server.uri, { writable: true });
    expect(file.info).toMatchObject({ minimumBlock: 4096, maximumPayload: 65536 });
    const expected = new Uint8Array(MiB);
    // Sixteen writes sharing two blocks at once: read-modify-write under the range lock keeps every one of them.
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => {
        const bytes = pattern(500, 10 + i);
        expected.set(bytes, 3000 + i * 500);
        return file.write(bytes, 3000 + i * 500);
      }),
    );
    const long = pattern(200_001, 30);
    await file.write(long, 70_001);
    expected.set(long, 70_001);
    expect(await file.deallocate(100_003, 9_000)).toBe(true);
    expected.fill(0, 100_003, 109_003);
    const odd = new Uint8Array(123_457);
    expect(await file.read(odd, 2_999)).toBe(odd.length);
    expectSameBytes(odd, expected.subarray(2_999, 2_999 + odd.length), 'unaligned read');
    await file.close();
    // qemu-img keeps to the 64 KiB maximum the server sets (nbdcopy asks for more and is refused).
    expectSameBytes(convertToRaw(server.uri, 'raw', scratch.dir), expected, 'qemu-img convert of the aligned export');
  });

  it('spreads requests over several connections only where the server allows multi-conn', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['memory', '4M']));
    const file = await openNbdFile(server.uri, { writable: true, connections: 4 });
    expect(file.info.canMultiConn).toBe(true);
    expect(file.connectionCount).toBe(4);
    await Promise.all(Array.from({ length: 32 }, (_, i) => file.write(pattern(64 * 1024, i), i * 128 * 1024)));
    await file.flush();
    const parts = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const dst = new Uint8Array(64 * 1024);
        await file.read(dst, i * 128 * 1024);
        return dst;
      }),
    );
    parts.forEach((part, i) => expectSameBytes(part, pattern(64 * 1024, i), `part ${i}`));
    await file.close();

    const single = await start(startNbdkit({ port: await freePort() }, ['--filter=multi-conn', 'memory', '1M', 'multi-conn-mode=disable']));
    const one = await openNbdFile(single.uri, { writable: true, connections: 4 });
    expect(one.info.canMultiConn).toBe(false);
    expect(one.connectionCount).toBe(1);
    await one.close();
  });

  it('falls back to NBD_OPT_EXPORT_NAME with a server that hides fixed newstyle', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['--mask-handshake=0', 'pattern', '1M']));
    const file = await openNbdFile(server.uri);
    const dst = new Uint8Array(16);
    await file.read(dst, 8);
    // nbdkit's pattern plugin: each 8-byte word holds its own offset, big-endian.
    expect(new DataView(dst.buffer).getBigUint64(0)).toBe(8n);
    expect(new DataView(dst.buffer).getBigUint64(8)).toBe(16n);
    await file.close();
  });

  it('cannot deallocate where the server has no WRITE_ZEROES, and says so', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['--filter=nozero', 'memory', '1M']));
    const file = await openNbdFile(server.uri, { writable: true });
    expect(file.capabilities.deallocate).toBe(false);
    await file.write(pattern(4096, 7), 0);
    expect(await file.deallocate(0, 4096)).toBe(false);
    const dst = new Uint8Array(4096);
    await file.read(dst, 0);
    expectSameBytes(dst, pattern(4096, 7));
    await file.close();
  });

  it('writes guest bytes through qemu-nbd into a qcow2 image that qemu-img then finds clean', async () => {
    const dir = scratchDir();
    const image = join(dir.dir, 'guest.qcow2');
    run('qemu-img', ['create', '-f', 'qcow2', image, '4M']);
    const server = await start(startQemuNbd(image, { port: await freePort() }, { format: 'qcow2', exportName: 'guest' }));
    const file = await openNbdFile(server.uri, { writable: true });
    const expected = new Uint8Array(4 * MiB);
    for (const [offset, length, seed] of [[0, 70_000, 1], [MiB + 17, 300_000, 2], [4 * MiB - 512, 512, 3]] as const) {
      const bytes = pattern(length, seed);
      await file.write(bytes, offset);
      expected.set(bytes, offset);
    }
    expect(await file.deallocate(MiB + 65536, 65536)).toBe(true);
    expected.fill(0, MiB + 65536, MiB + 131072);
    await file.flush();
    await file.close();
    expectSameBytes(convertToRaw(server.uri, 'raw', dir.dir), expected, 'qemu-img convert of the export');
    await server.stop();
    run('qemu-img', ['check', image]);
    expectSameBytes(convertToRaw(image, 'qcow2', dir.dir), expected, 'qemu-img convert of the image');
    dir.remove();
  });

  it('opens a read-only export read-only, and refuses to open it writable', async () => {
    const server = await start(startNbdkit({ port: await freePort() }, ['memory', '1M'], { readOnly: true }));
    expect(await codeOf(openNbdFile(server.uri, { writable: true }))).toBe('E_READ_ONLY');
    const file = await openNbdFile(server.uri);
    expect(file.capabilities.writable).toBe(false);
    expect(await codeOf(file.write(new Uint8Array(1), 0))).toBe('E_READ_ONLY');
    expect(await codeOf(file.deallocate(0, 1))).toBe('E_READ_ONLY');
    await file.close();
  });
});

describe('NbdBlockFile against a scripted server', () => {
  it('flushes as a no-op when the server offers no NBD_CMD_FLUSH', async () => {
    const server = new FakeServer();
    const opening = NbdBlockFile.connect(async () => server.transport, { writable: true });
    await server.handshake(4096, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_WRITE_ZEROES);
    const file = await opening;
    await file.flush();
    const closing = file.close();
    // Nothing went out between the handshake and the disconnect: the first request is NBD_CMD_DISC.
    expect((await server.request())?.type).toBe(2);
    await closing;
  });
});

beforeAll(() => {
  // Fail loudly, never skip, when a tool the tests need is missing.
  for (const tool of ['qemu-nbd', 'qemu-img', 'nbdkit', 'nbdcopy']) run('which', [tool]);
});
