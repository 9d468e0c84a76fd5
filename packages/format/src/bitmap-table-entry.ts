import { joinU64, view } from './bytes.js';

/**
 * A bitmap table entry (spec: "Bitmap table"), as masks over its two big-endian 32-bit halves: bits 9-55 the
 * offset of the cluster holding that part of the bitmap; with offset 0, bit 0 says whether the part reads as all
 * ones (set) or all zeros. Bits 1-8 and 56-63 are reserved. A data cluster with bit 0 set is invalid.
 */
export const BITMAP_TABLE_OFFSET_HI_MASK = 0x00ff_ffff;
export const BITMAP_TABLE_OFFSET_LO_MASK = 0xffff_fe00;
export const BITMAP_TABLE_RESERVED_HI_MASK = 0xff00_0000;
export const BITMAP_TABLE_RESERVED_LO_MASK = 0x0000_01fe;
export const BITMAP_TABLE_ALL_ONES_LO = 0x0000_0001;

/** Whether an entry sets any reserved bit (QEMU refuses to load such a table). */
export function bitmapTableEntryReserved(hi: number, lo: number): boolean {
  return (hi & BITMAP_TABLE_RESERVED_HI_MASK) !== 0 || (lo & BITMAP_TABLE_RESERVED_LO_MASK) !== 0;
}

/** What one bitmap table entry says about its part of the bitmap data. */
export type BitmapTableEntry = { kind: 'zeros' } | { kind: 'ones' } | { kind: 'data'; offset: number };

/**
 * Decodes entry `index` of a bitmap table. Entries QEMU refuses to load (reserved bits, a data cluster flagged
 * all ones, an unaligned cluster) decode to undefined: the caller decides what that means for the bitmap.
 */
export function decodeBitmapTableEntry(table: Uint8Array, index: number, clusterSize: number): BitmapTableEntry | undefined {
  const v = view(table);
  const hi = v.getUint32(index * 8);
  const lo = v.getUint32(index * 8 + 4);
  if (bitmapTableEntryReserved(hi, lo)) return undefined;
  const offset = joinU64(hi & BITMAP_TABLE_OFFSET_HI_MASK, (lo & BITMAP_TABLE_OFFSET_LO_MASK) >>> 0);
  if (offset === 0) return (lo & BITMAP_TABLE_ALL_ONES_LO) !== 0 ? { kind: 'ones' } : { kind: 'zeros' };
  if ((lo & BITMAP_TABLE_ALL_ONES_LO) !== 0 || offset % clusterSize !== 0) return undefined;
  return { kind: 'data', offset };
}

/** Encodes a bitmap table: one big-endian u64 per entry, in order. */
export function encodeBitmapTable(entries: readonly BitmapTableEntry[]): Uint8Array {
  const table = new Uint8Array(entries.length * 8);
  const v = view(table);
  entries.forEach((entry, i) => {
    if (entry.kind === 'ones') v.setUint32(i * 8 + 4, BITMAP_TABLE_ALL_ONES_LO);
    else if (entry.kind === 'data') {
      v.setUint32(i * 8, Math.floor(entry.offset / 0x1_0000_0000));
      v.setUint32(i * 8 + 4, entry.offset >>> 0);
    }
  });
  return table;
}
