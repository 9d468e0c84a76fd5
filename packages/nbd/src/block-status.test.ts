import { describe, expect, it } from 'vitest';
import { blockStatusReply, MAX_STATUS_DESCRIPTORS, STATUS_WINDOW } from './block-status.js';
import type { DirtyBitmapSource } from './dirty-bitmap-source.js';
import type { MetaContext } from './meta-contexts.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_WRITE,
  NBD_OPT_SET_META_CONTEXT,
  NBD_REP_META_CONTEXT,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from './protocol.js';
import { memoryServer, type ReplyChunk } from './test-client.js';
import { MessageBuilder, viewOf } from './wire.js';

const K = 4096;

/** A chunk's context id and (length, flags) pairs. */
function descriptors(chunk: ReplyChunk): { id: number; pairs: number[][] } {
  const view = viewOf(chunk.payload);
  const pairs: number[][] = [];
  for (let at = 4; at < chunk.payload.length; at += 8) pairs.push([view.getUint32(at), view.getUint32(at + 4)]);
  return { id: view.getUint32(0), pairs };
}

/** Decodes a chunk header and payload as it sits in a reply part. */
function chunkOf(bytes: Uint8Array): { flags: number; type: number; payload: Uint8Array } {
  const view = viewOf(bytes);
  return { flags: view.getUint16(4), type: view.getUint16(6), payload: bytes.subarray(20) };
}

describe('BLOCK_STATUS with several contexts', () => {
  /** Dirty in its first 8 KiB, clean after: the runs of whatever range is asked, split at 8 KiB. */
  const bitmap: DirtyBitmapSource = {
    name: 'b1',
    dirtyExtents: async (offset, length) => {
      const split = Math.min(Math.max(offset, 2 * K), offset + length);
      const runs = [
        { offset, length: split - offset, dirty: true },
        { offset: split, length: offset + length - split, dirty: false },
      ];
      return runs.filter((run) => run.length > 0);
    },
  };

  it('answers one chunk per selected context, with the ids SET gave, the last one DONE', async () => {
    const { client } = await memoryServer(16 * K, { allocationDepth: true, dirtyBitmaps: [bitmap] });
    await client.greet();
    client.sendOption(8);
    await client.optionReplies();
    const queries = ['qemu:dirty-bitmap:b1', 'base:allocation', 'qemu:allocation-depth'];
    const body = new MessageBuilder().u32(0).u32(queries.length);
    for (const query of queries) body.u32(new TextEncoder().encode(query).length).text(query);
    client.sendOption(NBD_OPT_SET_META_CONTEXT, body.finish());
    const replies = (await client.optionReplies()).filter((reply) => reply.type === NBD_REP_META_CONTEXT);
    const ids = new Map(replies.map((reply) => [new TextDecoder().decode(reply.data.subarray(4)), viewOf(reply.data).getUint32(0)]));
    expect([...ids.keys()]).toEqual(['base:allocation', 'qemu:allocation-depth', 'qemu:dirty-bitmap:b1']);
    await client.connect({ greet: false });

    client.sendRequest(NBD_CMD_WRITE, 1n, 4 * K, K, { payload: new Uint8Array(K).fill(1) });
    await client.reply();
    client.sendRequest(NBD_CMD_BLOCK_STATUS, 2n, 0, 16 * K);
    const chunks = [await client.reply(), await client.reply(), await client.reply()];
    expect(chunks.map((chunk) => chunk.type)).toEqual([NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_TYPE_BLOCK_STATUS]);
    expect(chunks.map((chunk) => chunk.flags & NBD_REPLY_FLAG_DONE)).toEqual([0, 0, NBD_REPLY_FLAG_DONE]);
    const byId = new Map(chunks.map((chunk) => [descriptors(chunk).id, descriptors(chunk).pairs]));
    // A raw file is data everywhere (a memory file has no holes), all of it in the one layer.
    expect(byId.get(ids.get('base:allocation')!)).toEqual([[16 * K, 0]]);
    expect(byId.get(ids.get('qemu:allocation-depth')!)).toEqual([[16 * K, 1]]);
    expect(byId.get(ids.get('qemu:dirty-bitmap:b1')!)).toEqual([[2 * K, 1], [14 * K, 0]]);

    client.sendRequest(NBD_CMD_BLOCK_STATUS, 3n, 0, 16 * K, { flags: NBD_CMD_FLAG_REQ_ONE });
    const one = [await client.reply(), await client.reply(), await client.reply()].map((chunk) => descriptors(chunk).pairs);
    expect(one.every((pairs) => pairs.length === 1)).toBe(true);
    expect(one).toContainEqual([[2 * K, 1]]);
  });
});

describe('blockStatusReply', () => {
  const handle = new Uint8Array(8);

  it('merges an extent across lookup windows, under REQ_ONE too', async () => {
    const calls: number[] = [];
    const context: MetaContext = {
      name: 'x-test:same',
      id: 7,
      extents: async (offset, length) => {
        calls.push(offset);
        return [{ length, flags: NBD_STATE_ZERO }];
      },
    };
    const length = 2 * STATUS_WINDOW + 5;
    for (const requestOne of [false, true]) {
      const [chunk] = (await blockStatusReply(handle, [context], 0, length, requestOne)).map(chunkOf);
      expect(chunk!.flags).toBe(NBD_REPLY_FLAG_DONE);
      expect(descriptors({ payload: chunk!.payload } as ReplyChunk)).toEqual({ id: 7, pairs: [[length, NBD_STATE_ZERO]] });
    }
    expect(calls).toEqual([0, STATUS_WINDOW, 2 * STATUS_WINDOW, 0, STATUS_WINDOW, 2 * STATUS_WINDOW]);
  });

  it(`stops at ${MAX_STATUS_DESCRIPTORS} descriptors, and at what a context leaves out`, async () => {
    const checkerboard: MetaContext = {
      name: 'x-test:checkerboard',
      id: 1,
      extents: async (offset, length) => Array.from({ length: Math.min(length, 100_000) }, (_, i) => ({ length: 1, flags: (offset + i) % 2 })),
    };
    const short: MetaContext = { name: 'x-test:short', id: 2, extents: async () => [{ length: 10, flags: NBD_STATE_HOLE }] };
    const parts = (await blockStatusReply(handle, [short, checkerboard], 0, 1 << 20, false)).map(chunkOf);
    expect(parts.map((part) => part.flags)).toEqual([0, NBD_REPLY_FLAG_DONE]);
    expect(descriptors({ payload: parts[0]!.payload } as ReplyChunk).pairs).toHaveLength(MAX_STATUS_DESCRIPTORS);
    expect(descriptors({ payload: parts[1]!.payload } as ReplyChunk)).toEqual({ id: 2, pairs: [[10, NBD_STATE_HOLE]] });
  });
});
