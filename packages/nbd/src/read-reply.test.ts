import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk, type BlockDevice, type BlockStatus } from '@q/raw';
import { memoryTransportPair } from './memory-transport.js';
import { NbdServer } from './nbd-server.js';
import {
  NBD_CMD_FLAG_DF,
  NBD_CMD_READ,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
} from './protocol.js';
import { MIN_HOLE, SPARSE_READ_MIN, readFragments } from './read-reply.js';
import { TestClient, clipStatuses, type ReplyChunk } from './test-client.js';
import { viewOf } from './wire.js';

const KiB = 1024;

/**
 * A 1 MiB disk whose block status reports `layout`, with bytes that agree with it: a pattern in data extents,
 * zeros elsewhere. Counts blockStatus calls, so tests can see which reads asked.
 */
async function sparseDisk(layout: BlockStatus[], size = 1 << 20): Promise<{ device: BlockDevice; bytes: Uint8Array; statusCalls: () => number }> {
  const bytes = new Uint8Array(size);
  for (const extent of layout) {
    if (extent.kind !== 'data') continue;
    for (let i = extent.offset; i < extent.offset + extent.length; i++) bytes[i] = ((i * 13) >>> 3) % 251 + 1;
  }
  const disk = await RawDisk.open(new MemoryBlockFile(bytes));
  let calls = 0;
  const device: BlockDevice = Object.assign(Object.create(disk) as RawDisk, {
    blockStatus: async (offset: number, length: number) => {
      calls++;
      return clipStatuses(layout, offset, length);
    },
  });
  return { device, bytes, statusCalls: () => calls };
}

async function client(device: BlockDevice, structured = true): Promise<TestClient> {
  const pair = memoryTransportPair();
  void new NbdServer({ device }).serve(pair.server);
  const testClient = new TestClient(pair.client);
  await testClient.connect({ structured });
  return testClient;
}

/** Byte equality without toEqual's per-element diffing, which takes seconds on half a megabyte. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

interface Piece {
  type: 'data' | 'hole';
  offset: number;
  length: number;
}

/**
 * Checks the chunks of one read the way a strict client does (in range, no overlap, every byte covered exactly
 * once, DONE on the last only) and returns them as pieces plus the bytes they add up to.
 */
function assemble(chunks: ReplyChunk[], offset: number, length: number): { pieces: Piece[]; bytes: Uint8Array } {
  const bytes = new Uint8Array(length);
  const covered = new Uint8Array(length);
  const pieces: Piece[] = [];
  chunks.forEach((chunk, i) => {
    expect((chunk.flags & NBD_REPLY_FLAG_DONE) !== 0).toBe(i === chunks.length - 1);
    const view = viewOf(chunk.payload);
    const at = Number(view.getBigUint64(0)) - offset;
    let piece: Piece;
    if (chunk.type === NBD_REPLY_TYPE_OFFSET_DATA) {
      piece = { type: 'data', offset: at + offset, length: chunk.payload.length - 8 };
      bytes.set(chunk.payload.subarray(8), at);
    } else {
      expect(chunk.type).toBe(NBD_REPLY_TYPE_OFFSET_HOLE);
      expect(chunk.payload.length).toBe(12);
      piece = { type: 'hole', offset: at + offset, length: view.getUint32(8) };
    }
    expect(piece.length).toBeGreaterThan(0);
    expect(at >= 0 && at + piece.length <= length).toBe(true);
    for (let j = at; j < at + piece.length; j++) covered[j]! += 1;
    pieces.push(piece);
  });
  expect(covered.every((count) => count === 1)).toBe(true);
  return { pieces, bytes };
}

describe('READ with structured replies over a sparse device', () => {
  // data | zero cluster | unallocated (no backing) | data
  const layout: BlockStatus[] = [
    { offset: 0, length: 64 * KiB, kind: 'data', hostOffset: 0 },
    { offset: 64 * KiB, length: 128 * KiB, kind: 'zero' },
    { offset: 192 * KiB, length: 64 * KiB, kind: 'unallocated' },
    { offset: 256 * KiB, length: 768 * KiB, kind: 'data', hostOffset: 256 * KiB },
  ];

  it('sends zero extents as OFFSET_HOLE chunks and reads only the data', async () => {
    const { device, bytes } = await sparseDisk(layout);
    const nbd = await client(device);
    nbd.sendRequest(NBD_CMD_READ, 1n, 0, 512 * KiB);
    const chunks = await nbd.replyChunks();
    expect(chunks.every((chunk) => chunk.handle === 1n)).toBe(true);
    const reply = assemble(chunks, 0, 512 * KiB);
    expect(reply.pieces).toEqual([
      { type: 'data', offset: 0, length: 64 * KiB },
      { type: 'hole', offset: 64 * KiB, length: 192 * KiB },
      { type: 'data', offset: 256 * KiB, length: 256 * KiB },
    ]);
    expect(sameBytes(reply.bytes, bytes.subarray(0, 512 * KiB))).toBe(true);
  });

  it('cuts the first and last pieces at the ends of the read, and may end (or be) a hole', async () => {
    const { device, bytes } = await sparseDisk(layout);
    const nbd = await client(device);
    nbd.sendRequest(NBD_CMD_READ, 2n, 32 * KiB, 128 * KiB);
    const ending = assemble(await nbd.replyChunks(), 32 * KiB, 128 * KiB);
    expect(ending.pieces).toEqual([
      { type: 'data', offset: 32 * KiB, length: 32 * KiB },
      { type: 'hole', offset: 64 * KiB, length: 96 * KiB },
    ]);
    expect(sameBytes(ending.bytes, bytes.subarray(32 * KiB, 160 * KiB))).toBe(true);
    nbd.sendRequest(NBD_CMD_READ, 3n, 80 * KiB, 160 * KiB);
    expect(assemble(await nbd.replyChunks(), 80 * KiB, 160 * KiB).pieces).toEqual([{ type: 'hole', offset: 80 * KiB, length: 160 * KiB }]);
  });

  it('keeps one OFFSET_DATA chunk, without asking for block status, for DF, short reads and simple replies', async () => {
    const { device, bytes, statusCalls } = await sparseDisk(layout);
    const nbd = await client(device);
    nbd.sendRequest(NBD_CMD_READ, 4n, 0, 512 * KiB, { flags: NBD_CMD_FLAG_DF });
    const whole = assemble(await nbd.replyChunks(), 0, 512 * KiB);
    expect(whole.pieces).toEqual([{ type: 'data', offset: 0, length: 512 * KiB }]);
    expect(sameBytes(whole.bytes, bytes.subarray(0, 512 * KiB))).toBe(true);
    nbd.sendRequest(NBD_CMD_READ, 5n, 64 * KiB, SPARSE_READ_MIN - 1);
    expect(assemble(await nbd.replyChunks(), 64 * KiB, SPARSE_READ_MIN - 1).pieces).toEqual([
      { type: 'data', offset: 64 * KiB, length: SPARSE_READ_MIN - 1 },
    ]);
    const simple = await client(device, false);
    simple.sendRequest(NBD_CMD_READ, 6n, 0, 512 * KiB);
    const reply = await simple.reply(512 * KiB);
    expect(reply).toMatchObject({ kind: 'simple', error: 0 });
    expect(sameBytes(reply.payload, bytes.subarray(0, 512 * KiB))).toBe(true);
    expect(statusCalls()).toBe(0);
    nbd.sendRequest(NBD_CMD_READ, 7n, 64 * KiB, SPARSE_READ_MIN);
    expect(assemble(await nbd.replyChunks(), 64 * KiB, SPARSE_READ_MIN).pieces).toEqual([{ type: 'hole', offset: 64 * KiB, length: SPARSE_READ_MIN }]);
    expect(statusCalls()).toBe(1);
  });
});

describe('readFragments', () => {
  it('folds zero runs shorter than MIN_HOLE into the data around them, after joining ZERO and HOLE|ZERO runs', async () => {
    const { device } = await sparseDisk([
      { offset: 0, length: 8 * KiB, kind: 'data', hostOffset: 0 },
      { offset: 8 * KiB, length: MIN_HOLE / 2, kind: 'zero' },
      { offset: 8 * KiB + MIN_HOLE / 2, length: 16 * KiB - MIN_HOLE / 2, kind: 'data', hostOffset: 1 << 20 },
      // A zero cluster that keeps its host cluster (ZERO) next to an unallocated one (HOLE|ZERO): one run.
      { offset: 24 * KiB, length: MIN_HOLE / 2, kind: 'zero', hostOffset: 2 << 20 },
      { offset: 24 * KiB + MIN_HOLE / 2, length: MIN_HOLE / 2, kind: 'unallocated' },
      { offset: 24 * KiB + MIN_HOLE, length: 1024 * KiB - 24 * KiB - MIN_HOLE, kind: 'data', hostOffset: 3 << 20 },
    ]);
    expect(await readFragments(device, 0, 64 * KiB)).toEqual([
      { offset: 0, length: 24 * KiB, zero: false },
      { offset: 24 * KiB, length: MIN_HOLE, zero: true },
      { offset: 24 * KiB + MIN_HOLE, length: 40 * KiB - MIN_HOLE, zero: false },
    ]);
  });

  it('reads what the device leaves undescribed as data', async () => {
    const { device } = await sparseDisk([{ offset: 0, length: 32 * KiB, kind: 'zero' }]);
    expect(await readFragments(device, 0, 96 * KiB)).toEqual([
      { offset: 0, length: 32 * KiB, zero: true },
      { offset: 32 * KiB, length: 64 * KiB, zero: false },
    ]);
  });
});
