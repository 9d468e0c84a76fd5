import { readPadded, type BlockFile } from '@q/raw';
import { view, type BitmapEntry } from '@q/format';
import { isZeroOffset, joinOffset, offsetRemainder, type HostOffset } from './host-offset.js';

/** Bitmap table entry (spec: "Bitmap table"): bits 9-55 the data cluster, bit 0 "all ones" when there is none. */
const RESERVED_HI = 0xff00_0000;
const RESERVED_LO = 0x0000_01fe;
const OFFSET_HI = 0x00ff_ffff;
const OFFSET_LO = 0xffff_fe00;
const ALL_ONES_LO = 0x1;
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
      if (!visit(hi, lo, joinOffset(hi & OFFSET_HI, (lo & OFFSET_LO) >>> 0))) return;
    }
  }
}

/** Whether QEMU can load an entry: no reserved bits; a data cluster must be aligned and not flagged "all ones". */
export function bitmapEntryValid(hi: number, lo: number, offset: HostOffset, clusterSize: number): boolean {
  if ((hi & RESERVED_HI) !== 0 || (lo & RESERVED_LO) !== 0) return false;
  if (isZeroOffset(offset)) return true;
  return (lo & ALL_ONES_LO) === 0 && offsetRemainder(offset, clusterSize) === 0;
}

/** Whether every entry of the table can be loaded (QEMU loads a table whole, or not at all). */
export async function bitmapTableValid(file: BlockFile, bitmap: BitmapEntry, clusterSize: number): Promise<boolean> {
  let valid = true;
  await forEachBitmapEntry(file, bitmap, (hi, lo, offset) => (valid = bitmapEntryValid(hi, lo, offset, clusterSize)));
  return valid;
}
