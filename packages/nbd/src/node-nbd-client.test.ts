import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isDiskError } from '@q/raw';
import { nbdStore } from './nbd-store.js';
import { openNbdFile, probeNbdExport } from './node-nbd-client.js';
import { IHAVEOPT, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_HAS_FLAGS, NBD_INFO_EXPORT, NBD_MAGIC, NBD_REP_ACK, NBD_REP_INFO, OPTION_REPLY_MAGIC } from './protocol.js';
import { MessageBuilder } from './wire.js';

/** Random-looking bytes (a fixed generator, so a failure can be replayed). */
function noise(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/** A valid greeting and a GO answered for a 1 MiB export: enough to get a client into transmission. */
function handshakeBytes(): Uint8Array {
  const info = new MessageBuilder(12).u16(NBD_INFO_EXPORT).u64(1 << 20).u16(NBD_FLAG_HAS_FLAGS).finish();
  return new MessageBuilder(128)
    .u64(OPTION_REPLY_MAGIC).u32(7).u32(NBD_REP_INFO).u32(info.length).bytesOf(info)
    .u64(OPTION_REPLY_MAGIC).u32(7).u32(NBD_REP_ACK).u32(0)
    .finish();
}

const GREETING = new MessageBuilder(18).u64(NBD_MAGIC).u64(IHAVEOPT).u16(NBD_FLAG_FIXED_NEWSTYLE).finish();

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (!isDiskError(error)) throw error;
    expect(error.message).not.toContain('\n');
    return { code: error.code, message: error.message };
  }
  throw new Error('expected a failure');
}

describe('the NBD client against broken servers (node:net)', { timeout: 20_000 }, () => {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });

  /** A server that runs `behave` on every connection; resolves to its nbd:// URI. */
  async function serve(behave: (socket: Socket) => void): Promise<string> {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      behave(socket);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return `nbd://127.0.0.1:${address.port}/`;
  }

  it('refuses a server that sends random bytes, at once', async () => {
    const uri = await serve((socket) => socket.write(noise(4096, 1)));
    const started = Date.now();
    expect(await failure(openNbdFile(uri))).toEqual({ code: 'E_IO', message: 'NBD protocol error: not an NBD server (no NBDMAGIC in the greeting)' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await nbdStore().exists(uri)).toBe(false);
  });

  it('refuses a wrong option reply magic after a good greeting', async () => {
    const uri = await serve((socket) => {
      socket.write(GREETING);
      socket.once('data', () => socket.write(noise(64, 2)));
    });
    expect(await failure(openNbdFile(uri))).toEqual({ code: 'E_IO', message: 'NBD protocol error: bad option reply magic' });
  });

  it('fails every pending request when the server answers them with garbage, and never hangs', async () => {
    const uri = await serve((socket) => {
      socket.write(GREETING);
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        // Client flags (4) and the GO option: answer it, then, once requests arrive, a flood of noise.
        if (received === 4 + 16 + 4 + 2 + 4) socket.write(handshakeBytes());
        else if (received > 4 + 16 + 4 + 2 + 4) socket.write(noise(1 << 20, 3));
      });
    });
    const file = await openNbdFile(uri);
    const reads = Array.from({ length: 8 }, (_, i) => file.read(new Uint8Array(4096), i * 4096));
    const outcomes = await Promise.all(reads.map(failure));
    for (const outcome of outcomes) expect(outcome).toEqual(outcomes[0]);
    expect(outcomes[0]).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/^NBD protocol error: bad reply magic 0x[0-9a-f]+$/) });
    expect(await failure(file.read(new Uint8Array(1), 0))).toMatchObject({ code: 'E_IO' });
    await file.close();
  });

  it('gives up on a server that accepts and says nothing, after the handshake timeout', async () => {
    const uri = await serve(() => {});
    const started = Date.now();
    expect(await failure(openNbdFile(uri, { handshakeTimeoutMs: 300 }))).toEqual({
      code: 'E_IO',
      message: 'the NBD server did not finish the handshake within 300 ms',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await failure(probeNbdExport(uri, { handshakeTimeoutMs: 300 }))).toMatchObject({ code: 'E_IO' });
  });

  it('reports a server that hangs up at once', async () => {
    const uri = await serve((socket) => socket.end());
    expect(await failure(openNbdFile(uri))).toEqual({ code: 'E_IO', message: 'NBD protocol error: the server closed the connection before its greeting' });
  });

  it('reports a server that hangs up in the middle of a read reply', async () => {
    const uri = await serve((socket) => {
      socket.write(GREETING);
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received === 30) socket.write(handshakeBytes());
        else if (received > 30) {
          // A simple reply header for the client's first handle, half the data, and gone.
          socket.end(new MessageBuilder(16 + 100).u32(0x67446698).u32(0).u32(0).u32(1).zeros(100).finish());
        }
      });
    });
    const file = await openNbdFile(uri);
    expect(await failure(file.read(new Uint8Array(4096), 0))).toEqual({
      code: 'E_IO',
      message: 'NBD protocol error: the server closed the connection 3996 bytes before the end of a read',
    });
    await file.close();
  });
});
