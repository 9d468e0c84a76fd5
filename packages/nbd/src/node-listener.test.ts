import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk, type BlockDevice } from '@q/raw';
import { NbdServer } from './nbd-server.js';
import { listenNbd, type NbdListener } from './node-listener.js';
import { socketTransport } from './node-transport.js';
import { NBD_CMD_READ, NBD_CMD_WRITE, NBD_REPLY_TYPE_OFFSET_DATA } from './protocol.js';
import { TestClient } from './test-client.js';
import type { MemoryClientEnd } from './memory-transport.js';
import { ByteReader } from './byte-reader.js';

/** A TestClient over a real socket: the same byte-level client, with the socket as its pipe. */
async function socketClient(address: { port: number } | { path: string }): Promise<{ client: TestClient; socket: Socket }> {
  const socket = 'path' in address ? connect(address.path) : connect(address.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const reader = new ByteReader(socket);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const end: MemoryClientEnd = {
    send: (bytes) => void socket.write(bytes),
    end: () => void socket.end(),
    receive: async (length) => reader.read(length).catch(() => undefined),
    closed,
  };
  return { client: new TestClient(end), socket };
}

describe('listenNbd', () => {
  let listener: NbdListener | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const start = async (address: { port: number } | { path: string }): Promise<{ port: number } | { path: string }> => {
    const device = await RawDisk.open(new MemoryBlockFile(new Uint8Array(1 << 20).fill(0x5a)));
    listener = await listenNbd(new NbdServer({ device }), address);
    return typeof listener.address === 'string' ? { path: listener.address } : { port: listener.address.port };
  };

  it('serves several TCP clients at once and stays up after they leave', async () => {
    const address = await start({ port: 0 });
    const clients = await Promise.all([socketClient(address), socketClient(address), socketClient(address)]);
    for (const { client } of clients) await client.connect({ structured: true });
    const write = new Uint8Array(512).fill(7);
    clients[0]!.client.sendRequest(NBD_CMD_WRITE, 1n, 0, 512, { payload: write });
    expect(await clients[0]!.client.reply()).toMatchObject({ error: 0 });
    // CAN_MULTI_CONN: a completed write on one connection is seen by the others.
    clients[1]!.client.sendRequest(NBD_CMD_READ, 2n, 0, 512);
    const read = await clients[1]!.client.reply();
    expect(read.type).toBe(NBD_REPLY_TYPE_OFFSET_DATA);
    expect(new Uint8Array(read.payload.subarray(8))).toEqual(write);
    for (const { socket } of clients) socket.destroy();

    const later = await socketClient(address);
    await later.client.connect();
    later.client.sendRequest(NBD_CMD_READ, 3n, 512, 4);
    expect(new Uint8Array((await later.client.reply(4)).payload)).toEqual(new Uint8Array(4).fill(0x5a));
    later.socket.destroy();
  });

  it('answers many large reads in flight with the right bytes (reply buffers are reused once sent)', async () => {
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 31 + (i >> 16)) & 0xff);
    const device = await RawDisk.open(new MemoryBlockFile(bytes));
    listener = await listenNbd(new NbdServer({ device }), { port: 0 });
    const { client, socket } = await socketClient({ port: (listener.address as { port: number }).port });
    await client.connect();
    // Three rounds of eight 128 KiB reads in flight (simple replies: data in the request's order of completion).
    for (let round = 0; round < 3; round++) {
      const offsets = Array.from({ length: 8 }, (_, i) => ((i * 3 + round) % 8) * 131072);
      offsets.forEach((offset, i) => client.sendRequest(NBD_CMD_READ, BigInt(round * 8 + i + 1), offset, 131072));
      for (let i = 0; i < offsets.length; i++) {
        const reply = await client.reply(131072);
        const offset = offsets[Number(reply.handle) - round * 8 - 1]!;
        expect(reply.error).toBe(0);
        // Buffer.equals: vitest's toEqual walks typed arrays element by element (seconds for these 3 MiB).
        expect(Buffer.from(reply.payload).equals(bytes.subarray(offset, offset + 131072))).toBe(true);
      }
    }
    socket.destroy();
  });

  it('drops a garbage client and serves the next one (Unix socket)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
    const address = await start({ path: join(dir, 'nbd.sock') });
    const garbage = await socketClient(address);
    await garbage.client.need(18);
    garbage.socket.write(new Uint8Array(4));
    const random = new Uint8Array(4096);
    for (let i = 0; i < random.length; i++) random[i] = (i * 131 + 17) & 0xff;
    garbage.socket.write(random);
    await garbage.client.end.closed;

    const wrongRequestMagic = await socketClient(address);
    await wrongRequestMagic.client.connect();
    wrongRequestMagic.socket.write(random.subarray(0, 28));
    await wrongRequestMagic.client.end.closed;

    const good = await socketClient(address);
    await good.client.connect();
    good.client.sendRequest(NBD_CMD_READ, 9n, 0, 8);
    expect(await good.client.reply(8)).toMatchObject({ handle: 9n, error: 0 });
    good.socket.destroy();
  });

  it('shuts down: open connections close and the port stops accepting', async () => {
    const address = await start({ port: 0 });
    const { client } = await socketClient(address);
    await client.connect();
    client.sendRequest(NBD_CMD_READ, 1n, 0, 1 << 20);
    expect(await client.reply(1 << 20)).toMatchObject({ handle: 1n, error: 0 });
    await listener!.close();
    listener = undefined;
    await client.end.closed;
    await expect(socketClient(address)).rejects.toThrow();
  });

  it('socketTransport rejects writes after close', async () => {
    const address = await start({ port: 0 });
    const socket = connect((address as { port: number }).port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const transport = socketTransport(socket);
    transport.close();
    await expect(transport.write([new Uint8Array(1)])).rejects.toThrow();
  });

  it('socketTransport: replies waiting for a full socket share one drain listener', async () => {
    let client: Socket | undefined;
    const socket = await new Promise<Socket>((resolve) => {
      const server = createServer((accepted) => {
        server.close();
        resolve(accepted);
      });
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('no port');
        // A client that reads nothing for now, so the server's socket fills.
        client = connect(address.port, '127.0.0.1').pause();
      });
    });
    const transport = socketTransport(socket);
    const closeListeners = socket.listenerCount('close');
    // Sixteen replies in flight (a connection's default limit), each far larger than the socket buffers.
    const writes = Array.from({ length: 16 }, () => transport.write([new Uint8Array(16), new Uint8Array(1 << 20)]));
    expect(socket.listenerCount('drain')).toBe(1);
    expect(socket.listenerCount('close')).toBe(closeListeners + 1);
    client!.resume();
    await Promise.all(writes);
    expect(socket.listenerCount('drain')).toBe(0);
    socket.destroy();
    client!.destroy();
  });

  describe('Unix socket files', () => {
    /** A socket file nothing listens on, as a server killed with SIGKILL leaves it (a child bound it and died). */
    const staleSocket = (path: string): void => {
      const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
      spawnSync(process.execPath, ['-e', script]);
      expect(statSync(path).isSocket()).toBe(true);
    };

    it('replaces a stale socket left by a killed server', async () => {
      dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
      const path = join(dir, 'nbd.sock');
      staleSocket(path);
      const address = await start({ path });
      const { client, socket } = await socketClient(address);
      await client.connect();
      socket.destroy();
    });

    it('does not take the socket of a live server, nor a file that is not a socket', async () => {
      dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
      const path = join(dir, 'nbd.sock');
      const address = await start({ path });
      const device = await RawDisk.open(new MemoryBlockFile(new Uint8Array(4096)));
      await expect(listenNbd(new NbdServer({ device }), { path })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // The first server still answers on its socket.
      const { client, socket } = await socketClient(address);
      await client.connect();
      socket.destroy();

      const file = join(dir, 'not-a-socket');
      writeFileSync(file, 'keep me');
      await expect(listenNbd(new NbdServer({ device }), { path: file })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(statSync(file).isFile()).toBe(true);
    });

    it('close removes the socket file, but not one a newer server bound on the same path', async () => {
      dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
      const path = join(dir, 'nbd.sock');
      await start({ path });
      await listener!.close();
      expect(existsSync(path)).toBe(false);
      // A read that waits for us holds the first server's shutdown open while a successor binds the path.
      const raw = await RawDisk.open(new MemoryBlockFile(new Uint8Array(4096)));
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      const slow: BlockDevice = {
        name: raw.name,
        format: raw.format,
        size: raw.size,
        readOnly: raw.readOnly,
        backing: undefined,
        read: async (dst, offset) => {
          await held;
          await raw.read(dst, offset);
        },
        blockStatus: (offset, length) => raw.blockStatus(offset, length),
        write: (src, offset) => raw.write(src, offset),
        writeZeroes: (offset, length, options) => raw.writeZeroes(offset, length, options),
        discard: (offset, length) => raw.discard(offset, length),
        flush: () => raw.flush(),
        close: () => raw.close(),
      };
      const first = await listenNbd(new NbdServer({ device: slow }), { path });
      const { client, socket } = await socketClient({ path });
      await client.connect();
      client.sendRequest(NBD_CMD_READ, 1n, 0, 512);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const closing = first.close();
      const successor = await listenNbd(new NbdServer({ device: raw }), { path });
      listener = successor;
      release();
      await closing;
      socket.destroy();
      expect(statSync(path).isSocket()).toBe(true);
    });
  });
});
