// A hand-written client against a running `qcow serve`: what the reply chunks of a sparse read look like on the
// wire, and what the server does with clients that break the rules. The in-memory unit tests of @q/nbd cover the
// same rules with simple replies over a raw disk; these run the real process (cothread, qcow2 image, sockets).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, qemuRaw, run } from '@q/test-support';
import type { ServeProcess } from './nbd-server.js';
import {
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_EINVAL,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  RawNbdClient,
  type Chunk,
} from './raw-client.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-raw-');
const MiB = 1 << 20;

/** A 4 MiB qcow2 image: data, a zero cluster, unallocated space, data, unallocated space to the end. */
function sparseImage(): string {
  const image = scope.dir.path('disk.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
  qemuIo(image, ['write -P 0x5a 0 1M', 'write -z 1M 64k', 'write -P 0x5b 2M 64k']);
  return image;
}

/** The single final ERROR chunk of a refused request. */
function expectError(chunks: Chunk[], handle: bigint, error: number): void {
  expect(chunks).toHaveLength(1);
  expect(chunks[0]).toMatchObject({ handle, type: NBD_REPLY_TYPE_ERROR, flags: NBD_REPLY_FLAG_DONE, error });
}

/**
 * The server exited 0 (by itself after its last client, or on SIGTERM with -t), printed nothing, and the image is
 * clean and still holds its data.
 */
async function expectImageUntouched(server: ServeProcess, image: string, how: 'exit' | 'stop'): Promise<void> {
  expect(await (how === 'exit' ? server.exited() : server.stop())).toBe(0);
  expect(server.stderr()).toBe('');
  const check = run('qemu-img', ['check', image]);
  expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  qemuIo(image, ['read -P 0x5a 0 1M', 'read -P 0 1M 1M', 'read -P 0x5b 2M 64k']);
}

describe('qcow serve on the wire', () => {
  it('sends the zeros of a long read as OFFSET_HOLE chunks, and one OFFSET_DATA chunk under DF', async () => {
    const image = sparseImage();
    const expected = readFileSync(qemuRaw(image, scope.dir.path('disk.raw')));
    const server = await scope.serve(['-r', image]);
    const client = await RawNbdClient.open(server.address);
    expect(await client.handshake({ structured: true })).toBe(4 * MiB);

    client.send(NBD_CMD_READ, 1n, 0, 4 * MiB);
    const sparse = await client.readData(0, 4 * MiB);
    expect(sparse.types).toEqual([NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_TYPE_OFFSET_HOLE, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_TYPE_OFFSET_HOLE]);
    expect(sparse.bytes.equals(expected)).toBe(true);

    client.send(NBD_CMD_READ, 2n, 0, 4 * MiB, { flags: NBD_CMD_FLAG_DF });
    const whole = await client.readData(0, 4 * MiB);
    expect(whole.types).toEqual([NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(whole.bytes.equals(expected)).toBe(true);

    // A short read inside a hole stays on the plain path: one data chunk of zeros.
    client.send(NBD_CMD_READ, 3n, 3 * MiB, 4096);
    const short = await client.readData(3 * MiB, 4096);
    expect(short.types).toEqual([NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(short.bytes.every((byte) => byte === 0)).toBe(true);
    client.send(NBD_CMD_DISC, 4n, 0, 0);
    await client.expectClosed();
  });
});

describe('qcow serve against clients that break the rules', () => {
  it('refuses a read past the end, an unknown command and a 32 MiB + 1 write with EINVAL, and the connection goes on', async () => {
    const image = sparseImage();
    const server = await scope.serve([image]);
    const client = await RawNbdClient.open(server.address);
    await client.handshake({ structured: true });

    client.send(NBD_CMD_READ, 1n, 4 * MiB - 512, 1024);
    expectError(await client.reply(), 1n, NBD_EINVAL);
    client.send(42, 2n, 0, 512);
    expectError(await client.reply(), 2n, NBD_EINVAL);
    // The payload comes in full: the server must read past it to find the next request.
    const oversized = Buffer.alloc(32 * MiB + 1, 0xee);
    client.send(NBD_CMD_WRITE, 3n, 0, oversized.length, { payload: oversized });
    expectError(await client.reply(), 3n, NBD_EINVAL);

    client.send(NBD_CMD_READ, 4n, MiB - 4096, 8192);
    const after = await client.readData(MiB - 4096, 8192);
    expect(after.bytes.subarray(0, 4096).every((byte) => byte === 0x5a)).toBe(true);
    expect(after.bytes.subarray(4096).every((byte) => byte === 0)).toBe(true);
    client.send(NBD_CMD_DISC, 5n, 0, 0);
    await client.expectClosed();
    await expectImageUntouched(server, image, 'exit');
  });

  it('hangs up on a write too long to skip, a write cut short and a client gone mid-reply, and serves the next', async () => {
    const image = sparseImage();
    const server = await scope.serve(['-t', image]);

    // Declares 4 GiB - 16 bytes: more than the server will read past, so it drops the connection.
    const huge = await RawNbdClient.open(server.address);
    await huge.handshake({ structured: true });
    huge.send(NBD_CMD_WRITE, 1n, 0, 0xfffffff0, { payload: Buffer.alloc(4096, 0xee) });
    await huge.expectClosed();

    // Half of a 1 MiB write, then the client's end of the stream: nothing of it may reach the image.
    const cut = await RawNbdClient.open(server.address);
    await cut.handshake({ structured: false });
    cut.send(NBD_CMD_WRITE, 2n, 0, MiB, { payload: Buffer.alloc(MiB / 2, 0xee) });
    cut.socket.end();
    await cut.expectClosed();

    // Sixteen 2 MiB reads, then a reset before reading any reply: the server's writes fail, the server does not.
    const gone = await RawNbdClient.open(server.address);
    await gone.handshake({ structured: true });
    for (let i = 0; i < 16; i++) gone.send(NBD_CMD_READ, BigInt(10 + i), 0, 2 * MiB);
    await new Promise((resolve) => setTimeout(resolve, 50));
    gone.destroy();

    const next = await RawNbdClient.open(server.address);
    expect(await next.handshake({ structured: false })).toBe(4 * MiB);
    next.send(NBD_CMD_READ, 20n, 0, 4096);
    const reply = await next.chunk(4096);
    expect(reply).toMatchObject({ handle: 20n, error: 0 });
    expect(reply.payload.every((byte) => byte === 0x5a)).toBe(true);
    next.send(NBD_CMD_DISC, 21n, 0, 0);
    await next.expectClosed();
    expect(server.child.exitCode).toBeNull();
    await expectImageUntouched(server, image, 'stop');
  });
});
