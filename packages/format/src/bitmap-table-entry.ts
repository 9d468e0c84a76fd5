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
