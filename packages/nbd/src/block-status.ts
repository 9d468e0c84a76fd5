import type { AllocationExtent } from './allocation-status.js';
import type { MetaContext } from './meta-contexts.js';
import { blockStatusChunk } from './replies.js';

/**
 * Descriptors per context in one reply at most: 512 KiB of descriptors. proto.md lets a server describe less than
 * the whole range; the client asks again from where the reply stopped.
 */
export const MAX_STATUS_DESCRIPTORS = 1 << 16;

/**
 * Bytes looked up per step. A 4 GiB request over 512-byte clusters (or a bitmap of 512-byte granules) would
 * otherwise ask for millions of extents at once, whatever we then send; a step holds at most 128 Ki of them (about
 * 10 MB of objects, times the requests a client may have in flight), and the reply stops growing at
 * MAX_STATUS_DESCRIPTORS. The cost of a lookup is in the clusters it walks, not in the number of steps.
 */
export const STATUS_WINDOW = 64 * 1024 * 1024;

/**
 * The reply to BLOCK_STATUS: one chunk per selected context, in id order, the last one flagged DONE (proto.md
 * "NBD_REPLY_TYPE_BLOCK_STATUS": exactly one chunk per context id). With REQ_ONE each chunk holds one descriptor.
 */
export async function blockStatusReply(
  handle: Uint8Array,
  contexts: readonly MetaContext[],
  offset: number,
  length: number,
  requestOne: boolean,
): Promise<Uint8Array[]> {
  const sorted = [...contexts].sort((a, b) => a.id - b.id);
  const answers = await Promise.all(sorted.map((context) => contextExtents(context, offset, length, requestOne ? 1 : MAX_STATUS_DESCRIPTORS)));
  return sorted.map((context, i) => blockStatusChunk(handle, context.id, answers[i]!, i === sorted.length - 1));
}

/**
 * Up to `limit` descriptors of one context from `offset`, looked up a window at a time and merged across windows,
 * so a window's edge never shows as a split (an extent that runs on is grown, even under REQ_ONE).
 */
async function contextExtents(context: MetaContext, offset: number, length: number, limit: number): Promise<AllocationExtent[]> {
  const extents: AllocationExtent[] = [];
  let done = 0;
  while (done < length) {
    const window = Math.min(STATUS_WINDOW, length - done);
    let got = 0;
    for (const extent of await context.extents(offset + done, window)) {
      const part = Math.min(extent.length, window - got);
      if (part <= 0) break;
      got += part;
      const last = extents[extents.length - 1];
      if (last !== undefined && last.flags === extent.flags) last.length += part;
      else if (extents.length === limit) return extents;
      else extents.push({ length: part, flags: extent.flags });
    }
    // A context that describes less than asked (the device ends, a source stops short) ends the reply there.
    if (got < window) break;
    done += window;
  }
  if (extents.length === 0) throw new Error(`metadata context ${context.name} described nothing at offset ${offset}`);
  return extents;
}
