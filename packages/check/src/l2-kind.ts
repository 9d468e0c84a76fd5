import { joinOffset, type HostOffset } from './host-offset.js';

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

/** The host offset of a standard entry (bits 9-55). */
export function standardOffset(hi: number, lo: number): HostOffset {
  return joinOffset(hi & OFFSET_HI, (lo & OFFSET_LO) >>> 0);
}

/**
 * A compressed cluster descriptor (spec: "Compressed Clusters Descriptor"): with x = 62 - (cluster_bits - 8),
 * bits 0..x-1 are the host byte offset and the next cluster_bits - 8 bits the number of additional 512-byte
 * sectors; the data runs to the end of the last sector. Decoded here without limits, damaged or not.
 */
export function compressedExtent(hi: number, lo: number, clusterBits: number): { offset: HostOffset; bytes: number } {
  const offsetBitsHigh = 62 - (clusterBits - 8) - 32;
  const offset = joinOffset(hi & ((1 << offsetBitsHigh) - 1), lo >>> 0);
  const sectors = (hi >>> offsetBitsHigh) & ((1 << (clusterBits - 8)) - 1);
  return { offset, bytes: (sectors + 1) * 512 - (lo & 511) };
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
