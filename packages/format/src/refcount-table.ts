import { DiskError } from '@q/raw';
import { view, writeU64 } from './bytes.js';
import { l1EntryOffset } from './l1-entry.js';

/**
 * Refcount table entry (spec: "Host cluster management"): bits 9-63 the refcount block's offset, bits 0-8
 * reserved; 0 = no block, all refcounts in its range are 0. As masks over the low half (the high half is all
 * offset).
 */
export const REFCOUNT_TABLE_OFFSET_LO_MASK = 0xffff_fe00;
export const REFCOUNT_TABLE_RESERVED_LO_MASK = 0x0000_01ff;

/**
 * Decodes a refcount table: one u64 per refcount block. Offsets must be cluster aligned; `fileSize` bounds them
 * when given.
 */
export function decodeRefcountTable(bytes: Uint8Array, clusterSize: number, fileSize?: number): number[] {
  const v = view(bytes);
  const count = Math.floor(bytes.length / 8);
  // Most of a table is empty (room to grow) and it is decoded once, at open, by code not yet compiled: testing both
  // halves of an entry for zero through a word view first keeps that loop to two loads per empty entry (a 64 KiB
  // table took 8 ms decoded entry by entry in a fresh process).
  const words = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count * 2) : new Uint32Array(bytes.slice(0, count * 8).buffer);
  const table: number[] = new Array<number>(count).fill(0);
  for (let index = 0; index < count; index++) {
    if ((words[2 * index]! | words[2 * index + 1]!) === 0) continue;
    const at = index * 8;
    const offset = l1EntryOffset(v.getUint32(at), v.getUint32(at + 4));
    if (offset % clusterSize !== 0 || (v.getUint32(at + 4) & REFCOUNT_TABLE_RESERVED_LO_MASK) !== 0) {
      throw new DiskError('E_CORRUPT', `refcount table entry ${index} (0x${offset.toString(16)}) is not cluster aligned`, { offset });
    }
    if (fileSize !== undefined && offset !== 0 && offset + clusterSize > fileSize) {
      throw new DiskError('E_PAST_EOF', `refcount block 0x${offset.toString(16)} (table entry ${index}) lies past the end of the file`, { offset });
    }
    table[index] = offset;
  }
  return table;
}

/** Encodes a refcount table into `clusters` clusters (entries past the list are 0). */
export function encodeRefcountTable(entries: readonly number[], clusterSize: number, clusters: number): Uint8Array {
  const bytes = new Uint8Array(clusters * clusterSize);
  const v = view(bytes);
  entries.forEach((offset, i) => writeRefcountTableEntry(v, i, offset));
  return bytes;
}

/** One refcount table entry's 8 bytes: for pointing one table entry at a new block in place. */
export function encodeRefcountTableEntry(blockOffset: number): Uint8Array {
  const bytes = new Uint8Array(8);
  writeRefcountTableEntry(view(bytes), 0, blockOffset);
  return bytes;
}

function writeRefcountTableEntry(table: DataView, index: number, blockOffset: number): void {
  if (blockOffset % 512 !== 0 || blockOffset < 0 || !Number.isSafeInteger(blockOffset)) {
    throw new DiskError('E_INVALID', `refcount block offset ${blockOffset} does not fit a refcount table entry`);
  }
  writeU64(table, index * 8, blockOffset);
}
