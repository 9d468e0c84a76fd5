import { DiskError } from '@q/raw';
import { joinU64 } from './bytes.js';

/**
 * The L1 entry layout (spec: "Cluster mapping"), as masks over the entry's two big-endian 32-bit halves: bit 63
 * COPIED, bits 9-55 the L2 table offset, bits 0-8 and 56-62 reserved.
 */
export const L1_COPIED_HI = 0x8000_0000;
export const L1_OFFSET_HI_MASK = 0x00ff_ffff;
export const L1_OFFSET_LO_MASK = 0xffff_fe00;
export const L1_RESERVED_HI_MASK = 0x7f00_0000;
export const L1_RESERVED_LO_MASK = 0x0000_01ff;

export interface L1Entry {
  /** Offset of the L2 table in the image file; 0 = the whole range is unallocated. */
  l2Offset: number;
  copied: boolean;
  /** Reserved bits are set: `qemu-img check` calls that corruption. */
  reservedBits: boolean;
}

/** Decodes the L1 entry stored as two big-endian halves. */
export function decodeL1Entry(hi: number, lo: number): L1Entry {
  return {
    l2Offset: l1EntryOffset(hi, lo),
    copied: (hi & L1_COPIED_HI) !== 0,
    reservedBits: (hi & L1_RESERVED_HI_MASK) !== 0 || (lo & L1_RESERVED_LO_MASK) !== 0,
  };
}

/** The L2 table offset of an L1 entry (bits 9-55), without building an object: for the per-request path. */
export function l1EntryOffset(hi: number, lo: number): number {
  const high = hi & L1_OFFSET_HI_MASK;
  if (high >= 0x20_0000) throw new DiskError('E_TOO_LARGE', 'L2 table offset is beyond 2^53');
  return joinU64(high, (lo & L1_OFFSET_LO_MASK) >>> 0);
}

/** The two halves of an L1 entry: the inverse of decodeL1Entry (reserved bits stay 0). */
export function encodeL1Entry(l2Offset: number, copied: boolean): [hi: number, lo: number] {
  if (l2Offset % 512 !== 0 || l2Offset >= 2 ** 56 || l2Offset < 0) {
    throw new DiskError('E_INVALID', `L2 table offset 0x${l2Offset.toString(16)} does not fit an L1 entry`);
  }
  const hi = Math.floor(l2Offset / 0x1_0000_0000);
  return [(hi | (copied ? L1_COPIED_HI : 0)) >>> 0, l2Offset >>> 0];
}

/** Writes entry `index` of an L1 table (8 bytes at index * 8). */
export function writeL1Entry(table: DataView, index: number, l2Offset: number, copied: boolean): void {
  const [hi, lo] = encodeL1Entry(l2Offset, copied);
  table.setUint32(index * 8, hi);
  table.setUint32(index * 8 + 4, lo);
}

/**
 * Sets or clears COPIED (bit 63) of entry `index`, leaving every other bit as stored (a repair must not touch
 * what it does not fix). Returns whether the entry changed.
 */
export function setL1EntryCopied(table: DataView, index: number, copied: boolean): boolean {
  const old = table.getUint32(index * 8);
  const next = (copied ? old | L1_COPIED_HI : old & ~L1_COPIED_HI) >>> 0;
  if (next === old) return false;
  table.setUint32(index * 8, next);
  return true;
}
