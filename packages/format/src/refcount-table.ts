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
  const table: number[] = [];
  for (let at = 0; at + 8 <= bytes.length; at += 8) {
    const offset = l1EntryOffset(v.getUint32(at), v.getUint32(at + 4));
    if (offset % clusterSize !== 0 || (v.getUint32(at + 4) & REFCOUNT_TABLE_RESERVED_LO_MASK) !== 0) {
      throw new DiskError('E_CORRUPT', `refcount table entry ${at / 8} (0x${offset.toString(16)}) is not cluster aligned`, { offset });
    }
    if (fileSize !== undefined && offset !== 0 && offset + clusterSize > fileSize) {
      throw new DiskError('E_PAST_EOF', `refcount block 0x${offset.toString(16)} (table entry ${at / 8}) lies past the end of the file`, { offset });
    }
    table.push(offset);
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
