import type { AllocationExtent } from './allocation-status.js';
import {
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  OPTION_REPLY_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { MessageBuilder, encodeText } from './wire.js';

/** An option reply: magic, the option it answers, reply type, length, data (proto.md "Fixed newstyle negotiation"). */
export function optionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new MessageBuilder(20 + data.length).u64(OPTION_REPLY_MAGIC).u32(option).u32(type).u32(data.length).bytesOf(data).finish();
}

/** An option error reply carrying a message for people (any error reply may, proto.md "Option reply types"). */
export function optionError(option: number, type: number, message: string): Uint8Array {
  return optionReply(option, type, encodeText(message.slice(0, 1024)));
}

/** The 16-byte simple reply header; a successful READ's data follows it (proto.md "Simple reply message"). */
export function simpleReply(handle: Uint8Array, error: number): Uint8Array {
  // Written in place, not through a MessageBuilder: one of these goes out per request.
  const reply = new Uint8Array(16);
  const view = new DataView(reply.buffer);
  view.setUint32(0, SIMPLE_REPLY_MAGIC);
  view.setUint32(4, error >>> 0);
  reply.set(handle, 8);
  return reply;
}

/** The 20-byte header of a structured reply chunk (proto.md "Structured reply chunk message"). */
export function chunkHeader(handle: Uint8Array, flags: number, type: number, length: number): Uint8Array {
  // Written in place, not through a MessageBuilder: one of these goes out per request.
  const header = new Uint8Array(20);
  const view = new DataView(header.buffer);
  view.setUint32(0, STRUCTURED_REPLY_MAGIC);
  view.setUint16(4, flags);
  view.setUint16(6, type);
  header.set(handle, 8);
  view.setUint32(16, length >>> 0);
  return header;
}

/** The final, empty chunk: success for a request that has nothing to return. */
export function noneChunk(handle: Uint8Array): Uint8Array {
  return chunkHeader(handle, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0);
}

/**
 * Header and offset of an OFFSET_DATA chunk (`final`: it carries NBD_REPLY_FLAG_DONE); the data itself is sent
 * right after as its own part, so a 32 MiB read is never copied into a bigger buffer just to prepend 28 bytes.
 */
export function offsetDataHead(handle: Uint8Array, offset: number, dataLength: number, final: boolean): Uint8Array {
  const head = new Uint8Array(OFFSET_DATA_HEAD);
  writeOffsetDataHead(head, handle, offset, dataLength, final);
  return head;
}

/** Bytes of an OFFSET_DATA chunk before its data: the chunk header and the 64-bit offset. */
export const OFFSET_DATA_HEAD = 28;

/**
 * Writes an OFFSET_DATA chunk's head into the first 28 bytes of `target`, whose data may follow in the same buffer
 * (a read's reply in one allocation, the device reading into the rest; the hot path of small reads).
 */
export function writeOffsetDataHead(target: Uint8Array, handle: Uint8Array, offset: number, dataLength: number, final: boolean): void {
  const view = new DataView(target.buffer, target.byteOffset, OFFSET_DATA_HEAD);
  view.setUint32(0, STRUCTURED_REPLY_MAGIC);
  view.setUint16(4, final ? NBD_REPLY_FLAG_DONE : 0);
  view.setUint16(6, NBD_REPLY_TYPE_OFFSET_DATA);
  target.set(handle, 8);
  view.setUint32(16, 8 + dataLength);
  // Offsets stay below 2^53: two 32-bit halves, no BigInt per reply.
  view.setUint32(20, Math.floor(offset / 2 ** 32));
  view.setUint32(24, offset >>> 0);
}

/**
 * An OFFSET_HOLE chunk: `holeLength` bytes at `offset` read as zeros, and are not sent (proto.md
 * "NBD_REPLY_TYPE_OFFSET_HOLE": a 64-bit offset, then a 32-bit hole size that must not be 0).
 */
export function offsetHoleChunk(handle: Uint8Array, offset: number, holeLength: number, final: boolean): Uint8Array {
  return new MessageBuilder(32)
    .bytesOf(chunkHeader(handle, final ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_OFFSET_HOLE, 12))
    .u64(offset)
    .u32(holeLength)
    .finish();
}

/** A final ERROR chunk: error value, message length, message (proto.md "NBD_REPLY_TYPE_ERROR"). */
export function errorChunk(handle: Uint8Array, error: number, message: string): Uint8Array {
  // The message length field is 16 bits, and the protocol caps strings at 4096 bytes anyway.
  let text = encodeText(message);
  if (text.length > 4096) text = text.subarray(0, 4096);
  return new MessageBuilder(26 + text.length)
    .bytesOf(chunkHeader(handle, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, 6 + text.length))
    .u32(error)
    .u16(text.length)
    .bytesOf(text)
    .finish();
}

/** A BLOCK_STATUS chunk for one metadata context (`final`: the reply's last): its id, then (length, flags) pairs. */
export function blockStatusChunk(handle: Uint8Array, contextId: number, extents: readonly AllocationExtent[], final = true): Uint8Array {
  const payload = 4 + 8 * extents.length;
  const builder = new MessageBuilder(20 + payload)
    .bytesOf(chunkHeader(handle, final ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_BLOCK_STATUS, payload))
    .u32(contextId);
  for (const extent of extents) builder.u32(extent.length).u32(extent.flags);
  return builder.finish();
}
