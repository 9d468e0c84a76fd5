import { readPadded, type BlockFile } from '@q/raw';
import {
  bitmapTableEntryReserved,
  BITMAP_TABLE_ALL_ONES_LO,
  BITMAP_TABLE_OFFSET_HI_MASK,
  BITMAP_TABLE_OFFSET_LO_MASK,
  view,
  type BitmapEntry,
} from '@q/format';
import { isZeroOffset, joinOffset, offsetRemainder, type HostOffset } from './host-offset.js';

/** Entries read at a time, so a large table costs a bounded buffer. */
const PIECE_ENTRIES = 8192;

/**
 * Visits the data cluster offsets of a bitmap table (entries without a cluster are skipped); `visit` returns
 * false to stop. Bytes past the end of the file read as zeros, as in QEMU.
 */
export async function forEachBitmapEntry(
  file: BlockFile,
  bitmap: BitmapEntry,
  visit: (hi: number, lo: number, offset: HostOffset) => boolean,
): Promise<void> {
  const piece = new Uint8Array(Math.min(bitmap.tableSize, PIECE_ENTRIES) * 8);
  for (let first = 0; first < bitmap.tableSize; first += PIECE_ENTRIES) {
    const count = Math.min(PIECE_ENTRIES, bitmap.tableSize - first);
    const bytes = piece.subarray(0, count * 8);
    await readPadded(file, bytes, bitmap.tableOffset + first * 8);
    const v = view(bytes);
    for (let i = 0; i < count; i++) {
      const hi = v.getUint32(i * 8);
      const lo = v.getUint32(i * 8 + 4);
      if (!visit(hi, lo, joinOffset(hi & BITMAP_TABLE_OFFSET_HI_MASK, (lo & BITMAP_TABLE_OFFSET_LO_MASK) >>> 0))) return;
    }
  }
}

/** Whether QEMU can load an entry: no reserved bits; a data cluster must be aligned and not flagged "all ones". */
export function bitmapEntryValid(hi: number, lo: number, offset: HostOffset, clusterSize: number): boolean {
  if (bitmapTableEntryReserved(hi, lo)) return false;
  if (isZeroOffset(offset)) return true;
  return (lo & BITMAP_TABLE_ALL_ONES_LO) === 0 && offsetRemainder(offset, clusterSize) === 0;
}

/** Whether every entry of the table can be loaded (QEMU loads a table whole, or not at all). */
export async function bitmapTableValid(file: BlockFile, bitmap: BitmapEntry, clusterSize: number): Promise<boolean> {
  let valid = true;
  await forEachBitmapEntry(file, bitmap, (hi, lo, offset) => (valid = bitmapEntryValid(hi, lo, offset, clusterSize)));
  return valid;
}
