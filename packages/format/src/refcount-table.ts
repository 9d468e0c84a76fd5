import { DiskError } from '@q/raw';
import { view, writeU64 } from './bytes.js';
import { l1EntryOffset } from './l1-entry.js';

/**
 * Decodes a refcount table: one u64 per refcount block, bits 9-63 its offset (0 = no block: all refcounts in that
 * range are 0). Offsets must be cluster aligned; `fileSize` bounds them when given.
 */
export function decodeRefcountTable(bytes: Uint8Array, clusterSize: number, fileSize?: number): number[] {
  const v = view(bytes);
  const table: number[] = [];
  for (let at = 0; at + 8 <= bytes.length; at += 8) {
    const offset = l1EntryOffset(v.getUint32(at), v.getUint32(at + 4));
    if (offset % clusterSize !== 0 || (v.getUint32(at + 4) & 0x1ff) !== 0) {
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
  entries.forEach((offset, i) => writeU64(v, i * 8, offset));
  return bytes;
}
