import { DiskError } from '@q/raw';

/**
 * How QEMU classifies an L2 entry before it looks at anything else (spec: "Cluster mapping"). The check needs
 * the raw classification, not the engine's decoded entry, because it must survive exactly the states the engine
 * refuses: unaligned offsets, reserved bits, contradicting subcluster bitmaps.
 */
export type L2Kind = 'compressed' | 'zero-plain' | 'zero-alloc' | 'normal' | 'unallocated';

const COPIED_HI = 0x8000_0000;
const COMPRESSED_HI = 0x4000_0000;
const ZERO_LO = 0x1;
/** Bits 9-55: the host offset of a standard entry. */
const OFFSET_HI = 0x00ff_ffff;
const OFFSET_LO = 0xffff_fe00;
/** Bits 1-8 and 56-61 of a standard entry must be zero. */
const RESERVED_HI = 0x3f00_0000;
const RESERVED_LO = 0x0000_01fe;

export interface L2Flags {
  extendedL2: boolean;
  externalDataFile: boolean;
}

export function l2Kind(hi: number, lo: number, flags: L2Flags): L2Kind {
  if ((hi & COMPRESSED_HI) !== 0) return 'compressed';
  // With subclusters the zero flag is not used (the bitmap says which subclusters read as zeros).
  if ((lo & ZERO_LO) !== 0 && !flags.extendedL2) return hasOffset(hi, lo) ? 'zero-alloc' : 'zero-plain';
  if (!hasOffset(hi, lo)) {
    // Offset 0 is a real cluster in an external data file; QEMU tells it from "unallocated" by the COPIED flag,
    // since every data file cluster has refcount 1.
    return flags.externalDataFile && (hi & COPIED_HI) !== 0 ? 'normal' : 'unallocated';
  }
  return 'normal';
}

function hasOffset(hi: number, lo: number): boolean {
  return (hi & OFFSET_HI) !== 0 || (lo & OFFSET_LO) !== 0;
}

/** The host offset of a standard entry (bits 9-55); an offset beyond 2^53 lies in no file we can address. */
export function standardOffset(hi: number, lo: number): number {
  const high = hi & OFFSET_HI;
  if (high >= 0x20_0000) throw new DiskError('E_TOO_LARGE', `L2 entry offset 0x${high.toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')} is beyond 2^53`);
  return high * 0x1_0000_0000 + ((lo & OFFSET_LO) >>> 0);
}

export function hasReservedBits(hi: number, lo: number): boolean {
  return (hi & RESERVED_HI) !== 0 || (lo & RESERVED_LO) !== 0;
}

export function isCopied(hi: number): boolean {
  return (hi & COPIED_HI) !== 0;
}

export function withCopied(hi: number, copied: boolean): number {
  return (copied ? hi | COPIED_HI : hi & ~COPIED_HI) >>> 0;
}

export const L2_ZERO_FLAG_LO = ZERO_LO;
