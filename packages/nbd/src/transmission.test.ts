import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk, type BlockDevice, type BlockStatus } from '@q/raw';
import { allocationExtents } from './allocation-status.js';
import { memoryTransportPair } from './memory-transport.js';
import { NbdServer } from './nbd-server.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from './protocol.js';
import { TestClient, clipStatuses, memoryServer } from './test-client.js';
import { viewOf } from './wire.js';
import type { NbdTransport } from './transport.js';
import { DiskError } from '@q/raw';

/**
 * A client of a server over `device` (a RawDisk with some methods replaced), the server's end of the connection
 * optionally wrapped (to watch what it writes).
 */
function clientOf(device: BlockDevice, wrap: (end: NbdTransport) => NbdTransport = (end) => end): TestClient {
  const pair = memoryTransportPair();
  void new NbdServer({ device }).serve(wrap(pair.server));
  return new TestClient(pair.client);
}

const pattern = (bytes: Uint8Array): void => {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
};

describe('transmission, simple replies', () => {
  it('reads, writes, flushes, trims and zeroes', async () => {
    const { client, file } = await memoryServer(1 << 20, { fill: pattern });
    await client.connect();
    client.sendRequest(NBD_CMD_READ, 1n, 4096, 512);
    const read = await client.reply(512);
    expect(read).toMatchObject({ kind: 'simple', handle: 1n, error: 0 });
    expect(read.payload).toEqual(file.contents().slice(4096, 4608));

    const data = new Uint8Array(1000).fill(0xab);
    client.sendRequest(NBD_CMD_WRITE, 2n, 100, data.length, { payload: data, flags: NBD_CMD_FLAG_FUA });
    expect(await client.reply()).toMatchObject({ handle: 2n, error: 0 });
    expect(file.contents().slice(100, 1100)).toEqual(data);

    client.sendRequest(NBD_CMD_FLUSH, 3n, 0, 0);
    expect(await client.reply()).toMatchObject({ handle: 3n, error: 0 });
    client.sendRequest(NBD_CMD_TRIM, 4n, 0, 65536);
    expect(await client.reply()).toMatchObject({ handle: 4n, error: 0 });
    client.sendRequest(NBD_CMD_WRITE_ZEROES, 5n, 50, 100);
    expect(await client.reply()).toMatchObject({ handle: 5n, error: 0 });
    expect(file.contents().slice(50, 150).every((b) => b === 0)).toBe(true);
    client.sendRequest(NBD_CMD_WRITE_ZEROES, 6n, 0, 100, { flags: NBD_CMD_FLAG_FAST_ZERO });
    expect(await client.reply()).toMatchObject({ handle: 6n, error: NBD_ENOTSUP });
  });

  it('refuses out-of-range, oversized and unknown requests, and keeps serving', async () => {
    const { client } = await memoryServer(1 << 20);
    await client.connect();
    client.sendRequest(NBD_CMD_READ, 1n, (1 << 20) - 10, 20);
    expect(await client.reply(20)).toMatchObject({ handle: 1n, error: NBD_EINVAL });
    client.sendRequest(NBD_CMD_READ, 2n, 0xffffffffffffff00n, 10);
    expect(await client.reply(10)).toMatchObject({ handle: 2n, error: NBD_EINVAL });
    client.sendRequest(NBD_CMD_WRITE, 3n, 1 << 20, 4, { payload: new Uint8Array(4) });
    expect(await client.reply()).toMatchObject({ handle: 3n, error: NBD_ENOSPC });
    client.sendRequest(NBD_CMD_READ, 4n, 0, 64 << 20);
    expect(await client.reply()).toMatchObject({ handle: 4n, error: NBD_EINVAL });
    // An oversized write's payload is skipped so the stream stays in step.
    const big = (32 << 20) + 1;
    client.sendRequest(NBD_CMD_WRITE, 5n, 0, big, { payload: new Uint8Array(big) });
    expect(await client.reply()).toMatchObject({ handle: 5n, error: NBD_EINVAL });
    client.sendRequest(99, 6n, 0, 0);
    expect(await client.reply()).toMatchObject({ handle: 6n, error: NBD_EINVAL });
    client.sendRequest(NBD_CMD_READ, 7n, 0, 8, { flags: 0x100 });
    expect(await client.reply()).toMatchObject({ handle: 7n, error: NBD_EINVAL });
    client.sendRequest(NBD_CMD_BLOCK_STATUS, 8n, 0, 8);
    expect(await client.reply()).toMatchObject({ handle: 8n, error: NBD_EINVAL });
    client.sendRequest(NBD_CMD_READ, 9n, 0, 8);
    expect(await client.reply(8)).toMatchObject({ handle: 9n, error: 0 });
  });

  it('answers writes to a read-only export with EPERM', async () => {
    const { client } = await memoryServer(65536, { readOnly: true });
    await client.connect();
    client.sendRequest(NBD_CMD_WRITE, 1n, 0, 4, { payload: new Uint8Array(4) });
    expect(await client.reply()).toMatchObject({ error: NBD_EPERM });
    client.sendRequest(NBD_CMD_TRIM, 2n, 0, 4);
    expect(await client.reply()).toMatchObject({ error: NBD_EPERM });
    client.sendRequest(NBD_CMD_WRITE_ZEROES, 3n, 0, 4);
    expect(await client.reply()).toMatchObject({ error: NBD_EPERM });
  });

  it('closes on NBD_CMD_DISC after replying to what is in flight', async () => {
    const { client, served } = await memoryServer();
    await client.connect();
    client.sendRequest(NBD_CMD_READ, 1n, 0, 16);
    client.sendRequest(NBD_CMD_DISC, 2n, 0, 0);
    expect(await client.reply(16)).toMatchObject({ handle: 1n, error: 0 });
    await served;
    await client.end.closed;
  });

  it('turns a device failure into EIO for that request only', async () => {
    const file = new MemoryBlockFile(new Uint8Array(65536));
    const disk = await RawDisk.open(file);
    const failing: BlockDevice = Object.assign(Object.create(disk) as RawDisk, {
      read: async (dst: Uint8Array, offset: number) => {
        if (offset === 4096) throw new DiskError('E_IO', 'injected failure');
        return disk.read(dst, offset);
      },
    });
    const client = clientOf(failing);
    await client.connect({ structured: true });
    client.sendRequest(NBD_CMD_READ, 1n, 4096, 16);
    const failed = await client.reply();
    expect(failed).toMatchObject({ type: NBD_REPLY_TYPE_ERROR, error: NBD_EIO, flags: NBD_REPLY_FLAG_DONE });
    expect(new TextDecoder().decode(failed.payload.subarray(6))).toContain('injected failure');
    client.sendRequest(NBD_CMD_READ, 2n, 0, 16);
    expect(await client.reply()).toMatchObject({ handle: 2n, type: NBD_REPLY_TYPE_OFFSET_DATA });
  });

  it('reuses a large write payload buffer only after a write that succeeded', async () => {
    const file = new MemoryBlockFile(new Uint8Array(1 << 20), { writable: true });
    const disk = await RawDisk.open(file);
    const seen: ArrayBufferLike[] = [];
    const recording: BlockDevice = Object.assign(Object.create(disk) as RawDisk, {
      write: async (src: Uint8Array, offset: number) => {
        seen.push(src.buffer);
        // A failed write may leave I/O running on its buffer: the next payload must not land in it.
        if (offset === 65536) throw new DiskError('E_IO', 'injected failure');
        return disk.write(src, offset);
      },
    });
    const client = clientOf(recording);
    await client.connect();
    const payload = (fill: number): Uint8Array => new Uint8Array(65536).fill(fill);
    for (const [handle, offset] of [[1n, 0], [2n, 0], [3n, 65536], [4n, 131072]] as const) {
      client.sendRequest(NBD_CMD_WRITE, handle, offset, 65536, { payload: payload(Number(handle)) });
      expect(await client.reply()).toMatchObject({ handle, error: handle === 3n ? NBD_EIO : 0 });
    }
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).toBe(seen[0]);
    expect(seen[3]).not.toBe(seen[2]);
    expect(file.contents().slice(0, 65536).every((b) => b === 2)).toBe(true);
    expect(file.contents().slice(131072, 196608).every((b) => b === 4)).toBe(true);
  });
});

describe('transmission, reply buffers', () => {
  it('reuses a large READ reply buffer only once the transport has sent it', async () => {
    const { file } = await memoryServer(1 << 20, { fill: pattern });
    const held: Array<{ data: Uint8Array; sent: (() => void) | undefined }> = [];
    const client = clientOf(await RawDisk.open(file), (end) => ({
      ...end,
      // Forwarded at once (the memory transport copies), but the sending is declared done only when the test says.
      write: (parts, sent) => {
        held.push({ data: parts[parts.length - 1]!, sent });
        return end.write(parts);
      },
    }));
    await client.connect();
    const read = async (handle: bigint, offset: number): Promise<{ data: Uint8Array; sent: (() => void) | undefined }> => {
      client.sendRequest(NBD_CMD_READ, handle, offset, 65536);
      const reply = await client.reply(65536);
      expect(reply.payload).toEqual(file.contents().slice(offset, offset + 65536));
      return held[held.length - 1]!;
    };
    const first = await read(1n, 0);
    const second = await read(2n, 65536);
    // The first reply is not sent yet: the second must not have been built in its buffer.
    expect(second.data.buffer).not.toBe(first.data.buffer);
    expect(first.data).toEqual(file.contents().slice(0, 65536));
    first.sent?.();
    expect((await read(3n, 131072)).data.buffer).toBe(first.data.buffer);
  });
});

describe('transmission, structured replies', () => {
  it('sends READ as one final OFFSET_DATA chunk', async () => {
    const { client, file } = await memoryServer(1 << 20, { fill: pattern });
    await client.connect({ structured: true });
    client.sendRequest(NBD_CMD_READ, 11n, 8192, 100);
    const chunk = await client.reply();
    expect(chunk).toMatchObject({ kind: 'structured', handle: 11n, type: NBD_REPLY_TYPE_OFFSET_DATA, flags: NBD_REPLY_FLAG_DONE });
    expect(Number(viewOf(chunk.payload).getBigUint64(0))).toBe(8192);
    expect(chunk.payload.subarray(8)).toEqual(file.contents().slice(8192, 8292));
    client.sendRequest(NBD_CMD_FLUSH, 12n, 0, 0);
    expect(await client.reply()).toMatchObject({ handle: 12n, type: NBD_REPLY_TYPE_NONE, flags: NBD_REPLY_FLAG_DONE });
    client.sendRequest(NBD_CMD_READ, 13n, 1 << 20, 1);
    expect(await client.reply()).toMatchObject({ handle: 13n, type: NBD_REPLY_TYPE_ERROR, error: NBD_EINVAL });
  });

  it('answers BLOCK_STATUS for base:allocation, honouring REQ_ONE', async () => {
    const { client } = await memoryServer(1 << 20);
    await client.connect({ meta: true });
    client.sendRequest(NBD_CMD_BLOCK_STATUS, 21n, 0, 1 << 20);
    const chunk = await client.reply();
    expect(chunk).toMatchObject({ handle: 21n, type: NBD_REPLY_TYPE_BLOCK_STATUS, flags: NBD_REPLY_FLAG_DONE });
    const view = viewOf(chunk.payload);
    expect(chunk.payload.length).toBe(12);
    expect(view.getUint32(0)).toBe(1);
    expect([view.getUint32(4), view.getUint32(8)]).toEqual([1 << 20, 0]);
    client.sendRequest(NBD_CMD_BLOCK_STATUS, 22n, 0, (1 << 20) + 1, { flags: NBD_CMD_FLAG_REQ_ONE });
    expect(await client.reply()).toMatchObject({ handle: 22n, error: NBD_EINVAL });
  });

  it('runs requests concurrently and matches replies by handle', async () => {
    const { client } = await memoryServer(1 << 20, { fill: pattern });
    await client.connect({ structured: true });
    for (let i = 0; i < 40; i++) client.sendRequest(NBD_CMD_READ, BigInt(100 + i), i * 4096, 4096);
    const handles = new Set<bigint>();
    for (let i = 0; i < 40; i++) handles.add((await client.reply()).handle);
    expect(handles.size).toBe(40);
  });
});

describe('allocationExtents', () => {
  /** A device whose top layer reports fixed statuses, over an optional backing device. */
  const layered = (size: number, statuses: BlockStatus[], backing?: BlockDevice): BlockDevice =>
    ({
      name: 'fake',
      format: 'qcow2',
      size,
      readOnly: true,
      backing,
      blockStatus: async (offset: number, length: number) => clipStatuses(statuses, offset, length),
    }) as unknown as BlockDevice;

  it('maps data, zero and unallocated extents to HOLE/ZERO flags and merges runs', async () => {
    const device = layered(5 * 4096, [
      { offset: 0, length: 4096, kind: 'data', hostOffset: 65536 },
      { offset: 4096, length: 4096, kind: 'data', hostOffset: 1 << 20 },
      { offset: 8192, length: 4096, kind: 'zero' },
      { offset: 12288, length: 4096, kind: 'unallocated' },
      { offset: 16384, length: 4096, kind: 'zero', hostOffset: 131072 },
    ]);
    expect(await allocationExtents(device, 0, 5 * 4096)).toEqual([
      { length: 8192, flags: 0 },
      { length: 8192, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
      { length: 4096, flags: NBD_STATE_ZERO },
    ]);
  });

  it('reports backing data as allocated and past the backing end as a hole', async () => {
    const backing = layered(4096, [{ offset: 0, length: 4096, kind: 'data', hostOffset: 0 }]);
    const top = layered(8192, [{ offset: 0, length: 8192, kind: 'unallocated' }], backing);
    expect(await allocationExtents(top, 0, 8192)).toEqual([
      { length: 4096, flags: 0 },
      { length: 4096, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
    ]);
  });
});
