import { DiskError } from '@q/raw';
import { joinU64 } from './bytes.js';

/** L1 entry: bit 63 COPIED, bits 9-55 the L2 table offset, the rest reserved (spec: "Cluster mapping"). */
export const L1_COPIED_HI = 0x8000_0000;
const OFFSET_HI_MASK = 0x00ff_ffff;
const OFFSET_LO_MASK = 0xffff_fe00;
const RESERVED_HI_MASK = 0x7f00_0000;
const RESERVED_LO_MASK = 0x0000_01ff;

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
    reservedBits: (hi & RESERVED_HI_MASK) !== 0 || (lo & RESERVED_LO_MASK) !== 0,
  };
}

/** The L2 table offset of an L1 entry (bits 9-55), without building an object: for the per-request path. */
export function l1EntryOffset(hi: number, lo: number): number {
  const high = hi & OFFSET_HI_MASK;
  if (high >= 0x20_0000) throw new DiskError('E_TOO_LARGE', 'L2 table offset is beyond 2^53');
  return joinU64(high, (lo & OFFSET_LO_MASK) >>> 0);
}

export function encodeL1Entry(l2Offset: number, copied: boolean): [hi: number, lo: number] {
  const hi = Math.floor(l2Offset / 0x1_0000_0000);
  return [(hi | (copied ? L1_COPIED_HI : 0)) >>> 0, l2Offset >>> 0];
}
