import {
  compressedDescriptorFields,
  L1_OFFSET_HI_MASK,
  L1_OFFSET_LO_MASK,
  L2_COMPRESSED_HI,
  L2_COPIED_HI,
  L2_OFFSET_HI_MASK,
  L2_OFFSET_LO_MASK,
  L2_RESERVED_HI_MASK,
  L2_RESERVED_LO_MASK,
  L2_ZERO_LO,
} from '@q/format';
import { joinOffset, type HostOffset } from './host-offset.js';

/**
 * How QEMU classifies an L2 entry before it looks at anything else (spec: "Cluster mapping"). The check needs
 * the raw classification, not the engine's decoded entry, because it must survive exactly the states the engine
 * refuses: unaligned offsets, reserved bits, contradicting subcluster bitmaps. The layout (masks, descriptor
 * fields) is @q/format's; only the judgement is here.
 */
export type L2Kind = 'compressed' | 'zero-plain' | 'zero-alloc' | 'normal' | 'unallocated';

export interface L2Flags {
  extendedL2: boolean;
  externalDataFile: boolean;
}

export function l2Kind(hi: number, lo: number, flags: L2Flags): L2Kind {
  if ((hi & L2_COMPRESSED_HI) !== 0) return 'compressed';
  // With subclusters the zero flag is not used (the bitmap says which subclusters read as zeros).
  if ((lo & L2_ZERO_LO) !== 0 && !flags.extendedL2) return hasOffset(hi, lo) ? 'zero-alloc' : 'zero-plain';
  if (!hasOffset(hi, lo)) {
    // Offset 0 is a real cluster in an external data file; QEMU tells it from "unallocated" by the COPIED flag,
    // since every data file cluster has refcount 1.
    return flags.externalDataFile && (hi & L2_COPIED_HI) !== 0 ? 'normal' : 'unallocated';
  }
  return 'normal';
}

function hasOffset(hi: number, lo: number): boolean {
  return (hi & L2_OFFSET_HI_MASK) !== 0 || (lo & L2_OFFSET_LO_MASK) !== 0;
}

/** The host offset of a standard entry (bits 9-55). */
export function standardOffset(hi: number, lo: number): HostOffset {
  return joinOffset(hi & L2_OFFSET_HI_MASK, (lo & L2_OFFSET_LO_MASK) >>> 0);
}

/** The L2 table offset of an L1 entry (bits 9-55); even an entry with only flags set names offset 0, as in QEMU. */
export function l1EntryOffsetOf(hi: number, lo: number): HostOffset {
  return joinOffset(hi & L1_OFFSET_HI_MASK, (lo & L1_OFFSET_LO_MASK) >>> 0);
}

/** Where a compressed cluster's data lies, decoded without limits, damaged or not. */
export function compressedExtent(hi: number, lo: number, clusterBits: number): { offset: HostOffset; bytes: number } {
  const fields = compressedDescriptorFields(hi, lo, clusterBits);
  return { offset: joinOffset(fields.offsetHi, fields.offsetLo), bytes: fields.bytes };
}

export function hasReservedBits(hi: number, lo: number): boolean {
  return (hi & L2_RESERVED_HI_MASK) !== 0 || (lo & L2_RESERVED_LO_MASK) !== 0;
}

export function isCopied(hi: number): boolean {
  return (hi & L2_COPIED_HI) !== 0;
}
