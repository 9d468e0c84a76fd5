import type { BlockDevice } from '@q/raw';
import { allocationExtents } from './allocation-status.js';
import { NBD_STATE_ZERO } from './protocol.js';
import { OFFSET_DATA_HEAD, noneChunk, offsetDataHead, offsetHoleChunk, simpleReply, writeOffsetDataHead } from './replies.js';

/**
 * Reads this long or longer ask the device where its zeros are before reading. Below it the extra block status
 * round trip (to the cothread, through the L2 cache) costs more than the zeros it could save on the wire, and the
 * 4 KiB reads that dominate random I/O stay one device read and one chunk.
 */
export const SPARSE_READ_MIN = 64 * 1024;

/**
 * Zero runs shorter than this are read and sent as data: a hole chunk costs a 32-byte header, and splitting the
 * data around it costs a device read and a chunk header more, which is not worth saving a few hundred bytes
 * (512-byte clusters or 2 KiB subclusters would otherwise cut a read into hundreds of chunks).
 */
export const MIN_HOLE = 4096;

/** A piece of a read: `zero` pieces go out as OFFSET_HOLE chunks, the others are read and sent as OFFSET_DATA. */
export interface ReadFragment {
  offset: number;
  length: number;
  zero: boolean;
}

/**
 * The reply to a READ of `[offset, offset + length)` (already checked against the device size and MAX_PAYLOAD).
 * Without structured replies: a simple reply followed by the data. With them: OFFSET_DATA and OFFSET_HOLE chunks
 * in offset order, the last one carrying NBD_REPLY_FLAG_DONE (proto.md "Structured reply types": chunks of one
 * read must not overlap and must not be empty). `fragment` is false when the client set NBD_CMD_FLAG_DF, which
 * asks for the whole read in a single chunk. `allocate` gives buffers (contents undefined) for the data.
 */
export async function readReply(
  device: BlockDevice,
  handle: Uint8Array,
  offset: number,
  length: number,
  options: { structured: boolean; fragment: boolean; allocate?: ((length: number) => Uint8Array) | undefined },
): Promise<Uint8Array[]> {
  // Every buffer is filled whole (a chunk head, then the device's read), so reused ones leak nothing.
  const allocate = options.allocate ?? ((size: number) => new Uint8Array(size));
  if (!options.structured || length === 0) {
    const data = allocate(length);
    if (length > 0) await device.read(data, offset);
    // An OFFSET_DATA chunk must carry at least one byte; an empty read is answered with the final NONE chunk.
    return options.structured ? [noneChunk(handle)] : [simpleReply(handle, 0), data];
  }
  if (!options.fragment || length < SPARSE_READ_MIN) {
    // One OFFSET_DATA chunk, head and data in one buffer: one allocation, one part to send.
    const reply = allocate(OFFSET_DATA_HEAD + length);
    writeOffsetDataHead(reply, handle, offset, length, true);
    await device.read(reply.subarray(OFFSET_DATA_HEAD), offset);
    return [reply];
  }
  const fragments = await readFragments(device, offset, length);
  // Data pieces are read concurrently: the cothread may overlap reads of allocated clusters.
  const data = await Promise.all(
    fragments.map(async (fragment) => {
      if (fragment.zero) return undefined;
      const bytes = allocate(fragment.length);
      await device.read(bytes, fragment.offset);
      return bytes;
    }),
  );
  const parts: Uint8Array[] = [];
  fragments.forEach((fragment, i) => {
    const final = i === fragments.length - 1;
    const bytes = data[i];
    if (bytes === undefined) parts.push(offsetHoleChunk(handle, fragment.offset, fragment.length, final));
    else parts.push(offsetDataHead(handle, fragment.offset, fragment.length, final), bytes);
  });
  return parts;
}

/**
 * Splits a read into data and zero pieces from the base:allocation view (which looks down the backing chain, so
 * a zero in the top layer and a range past a short backing file both count). Anything the device leaves
 * undescribed is read as data: a missed hole costs bandwidth, a false one would lose bytes.
 */
export async function readFragments(device: BlockDevice, offset: number, length: number): Promise<ReadFragment[]> {
  const runs: ReadFragment[] = [];
  let at = offset;
  for (const extent of await allocationExtents(device, offset, length)) {
    append(runs, { offset: at, length: extent.length, zero: (extent.flags & NBD_STATE_ZERO) !== 0 });
    at += extent.length;
  }
  if (at < offset + length) append(runs, { offset: at, length: offset + length - at, zero: false });
  // Second pass, on whole zero runs (a ZERO extent next to a HOLE|ZERO one is one run): fold the short ones in.
  const fragments: ReadFragment[] = [];
  for (const run of runs) append(fragments, { ...run, zero: run.zero && run.length >= MIN_HOLE });
  return fragments;
}

/** Appends, extending the last fragment when the new one continues it with the same kind. */
function append(fragments: ReadFragment[], next: ReadFragment): void {
  if (next.length === 0) return;
  const last = fragments[fragments.length - 1];
  if (last !== undefined && last.zero === next.zero) last.length += next.length;
  else fragments.push(next);
}
