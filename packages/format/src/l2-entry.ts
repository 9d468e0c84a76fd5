import { DiskError } from '@q/raw';
import { joinU64 } from './bytes.js';
import { decodeCompressedDescriptor, encodeCompressedDescriptor, L2_COMPRESSED_HI } from './compressed-descriptor.js';

/**
 * The L2 entry layout (spec: "Cluster mapping", "Extended L2 Entries"), as masks over the entry's two big-endian
 * 32-bit halves: bit 63 COPIED, bit 62 compressed, bits 9-55 the host cluster offset, bit 0 the zero flag
 * (standard entries of v3 images), bits 1-8 and 56-61 reserved. Extended entries add a second u64: bits 0-31 the
 * allocated subclusters, bits 32-63 the subclusters that read as zeros.
 */
export const L2_COPIED_HI = 0x8000_0000;
export { L2_COMPRESSED_HI };
export const L2_ZERO_LO = 0x0000_0001;
export const L2_OFFSET_HI_MASK = 0x00ff_ffff;
export const L2_OFFSET_LO_MASK = 0xffff_fe00;
/** Bits 1-8 and 56-61 of a standard entry. */
export const L2_RESERVED_HI_MASK = 0x3f00_0000;
export const L2_RESERVED_LO_MASK = 0x0000_01fe;
/** All 32 subclusters. */
export const ALL_SUBCLUSTERS = 0xffff_ffff;

/**
 * One L2 entry, classified. Standard (non-extended) entries are described with the same subcluster masks as
 * extended ones (all 32 bits alike), so the mapper has one code path: a subcluster is data when its alloc bit is
 * set, zero when its zero bit is set, and falls through to the backing file when neither is.
 */
export interface L2Entry {
  compressed: boolean;
  /** Host cluster offset (standard), or host byte offset of the compressed data; 0 = none. */
  hostOffset: number;
  /** Compressed only: bytes to read from hostOffset (the descriptor's sector count, minus the start skew). */
  compressedBytes: number;
  copied: boolean;
  allocMask: number;
  zeroMask: number;
  reservedBits: boolean;
}

/** What encodeL2Entry writes: a decoded entry without what the encoder cannot set (reserved bits stay 0). */
export type L2EntryFields = Omit<L2Entry, 'reservedBits'>;

export interface L2EntryContext {
  clusterBits: number;
  extendedL2: boolean;
  /** With an external data file, host offset 0 with COPIED set is a real cluster (guest offset 0). */
  externalDataFile: boolean;
}

/** Bytes per entry: 8, or 16 with extended L2 entries. */
function entryBytes(extendedL2: boolean): number {
  return extendedL2 ? 16 : 8;
}

/** An entry's words as stored: the u64 as two halves, and (extended entries) the subcluster bitmap's halves. */
export interface L2EntryWords {
  hi: number;
  lo: number;
  /** Subclusters that read as zeros (bitmap bits 32-63); 0 in a standard table. */
  zeroMask: number;
  /** Allocated subclusters (bitmap bits 0-31); 0 in a standard table. */
  allocMask: number;
}

/** Reads entry `index` without judgement: for readers that must survive any bits (`qcow check`). */
export function readL2EntryWords(table: DataView, index: number, extendedL2: boolean): L2EntryWords {
  const at = index * entryBytes(extendedL2);
  return {
    hi: table.getUint32(at),
    lo: table.getUint32(at + 4),
    zeroMask: extendedL2 ? table.getUint32(at + 8) : 0,
    allocMask: extendedL2 ? table.getUint32(at + 12) : 0,
  };
}

/**
 * Decodes entry `index` of an L2 table. Throws E_CORRUPT for the states QEMU also refuses to read: a subcluster
 * both allocated and zero, alloc bits on an unallocated cluster, a host offset not on a cluster boundary.
 */
export function decodeL2Entry(table: DataView, index: number, context: L2EntryContext): L2Entry {
  const at = index * entryBytes(context.extendedL2);
  const hi = table.getUint32(at);
  const lo = table.getUint32(at + 4);
  const copied = (hi & L2_COPIED_HI) !== 0;
  if ((hi & L2_COMPRESSED_HI) !== 0) {
    const { hostOffset, compressedBytes } = decodeCompressedDescriptor(hi, lo, context.clusterBits);
    return { compressed: true, hostOffset, compressedBytes, copied, allocMask: 0, zeroMask: 0, reservedBits: false };
  }
  const high = hi & L2_OFFSET_HI_MASK;
  if (high >= 0x20_0000) throw new DiskError('E_TOO_LARGE', 'data cluster offset is beyond 2^53');
  const hostOffset = joinU64(high, (lo & L2_OFFSET_LO_MASK) >>> 0);
  const reservedBits = (hi & L2_RESERVED_HI_MASK) !== 0 || (lo & L2_RESERVED_LO_MASK) !== 0;
  const allocated = hostOffset !== 0 || (context.externalDataFile && copied);
  if (allocated && hostOffset % 2 ** context.clusterBits !== 0) {
    throw new DiskError('E_CORRUPT', `Cluster allocation offset 0x${hostOffset.toString(16)} unaligned`, { offset: hostOffset });
  }
  let allocMask: number;
  let zeroMask: number;
  if (context.extendedL2) {
    allocMask = table.getUint32(at + 12);
    zeroMask = table.getUint32(at + 8);
    if ((allocMask & zeroMask) !== 0) {
      throw new DiskError('E_CORRUPT', `Invalid subcluster bitmap in L2 entry ${index}: subclusters both allocated and zero`);
    }
    if (!allocated && allocMask !== 0) {
      throw new DiskError('E_CORRUPT', `Invalid subcluster bitmap in L2 entry ${index}: allocated subclusters without a cluster`);
    }
  } else if ((lo & L2_ZERO_LO) !== 0) {
    allocMask = 0;
    zeroMask = ALL_SUBCLUSTERS;
  } else {
    allocMask = allocated ? ALL_SUBCLUSTERS : 0;
    zeroMask = 0;
  }
  return { compressed: false, hostOffset, compressedBytes: 0, copied, allocMask: allocMask >>> 0, zeroMask: zeroMask >>> 0, reservedBits };
}

/**
 * Writes entry `index` of an L2 table: the inverse of decodeL2Entry. A standard entry of a standard table has no
 * subcluster bitmap: any zero bit sets the zero flag (bit 0, v3 only; the caller knows the version), and whether
 * it is allocated follows from its host offset. An extended entry stores both masks as given (the spec's bitmap:
 * zero bits in the high half, alloc bits in the low). A compressed entry has no subclusters: its bitmap is 0.
 */
export function encodeL2Entry(table: DataView, index: number, entry: L2EntryFields, context: L2EntryContext): void {
  const at = index * entryBytes(context.extendedL2);
  let hi: number;
  let lo: number;
  if (entry.compressed) {
    [hi, lo] = encodeCompressedDescriptor(entry.hostOffset, entry.compressedBytes, context.clusterBits);
  } else {
    if (entry.hostOffset % 512 !== 0 || entry.hostOffset >= 2 ** 56) {
      throw new DiskError('E_INVALID', `data cluster offset 0x${entry.hostOffset.toString(16)} does not fit an L2 entry`);
    }
    hi = Math.floor(entry.hostOffset / 0x1_0000_0000);
    lo = entry.hostOffset >>> 0;
    if (!context.extendedL2 && entry.zeroMask !== 0) lo |= L2_ZERO_LO;
  }
  if (entry.copied) hi |= L2_COPIED_HI;
  table.setUint32(at, hi >>> 0);
  table.setUint32(at + 4, lo >>> 0);
  if (context.extendedL2) {
    table.setUint32(at + 8, entry.compressed ? 0 : entry.zeroMask >>> 0);
    table.setUint32(at + 12, entry.compressed ? 0 : entry.allocMask >>> 0);
  }
}

/**
 * Entries `[index, index + count)` name `count` consecutive data clusters from `hostOffset`, COPIED, with no zero
 * flag (extended: no subcluster bits): what encodeL2Entry writes for each, in one loop without an entry object per
 * cluster (preallocating 1 TiB sets 16 million entries).
 */
export function encodeDataClusterRun(table: DataView, index: number, count: number, hostOffset: number, context: L2EntryContext): void {
  const clusterSize = 2 ** context.clusterBits;
  const last = hostOffset + (count - 1) * clusterSize;
  if (hostOffset % 512 !== 0 || last >= 2 ** 56) throw new DiskError('E_INVALID', `data cluster offset 0x${last.toString(16)} does not fit an L2 entry`);
  const bytes = entryBytes(context.extendedL2);
  for (let i = 0, host = hostOffset; i < count; i++, host += clusterSize) {
    const at = (index + i) * bytes;
    table.setUint32(at, (Math.floor(host / 0x1_0000_0000) | L2_COPIED_HI) >>> 0);
    table.setUint32(at + 4, host >>> 0);
    if (context.extendedL2) {
      table.setUint32(at + 8, 0);
      table.setUint32(at + 12, 0);
    }
  }
}

/**
 * Sets or clears COPIED (bit 63) of entry `index`, leaving every other bit as stored (a repair must not touch
 * what it does not fix). Returns whether the entry changed.
 */
export function setL2EntryCopied(table: DataView, index: number, copied: boolean, context: Pick<L2EntryContext, 'extendedL2'>): boolean {
  const at = index * entryBytes(context.extendedL2);
  const old = table.getUint32(at);
  const next = withL2Copied(old, copied);
  if (next === old) return false;
  table.setUint32(at, next);
  return true;
}

/**
 * Whether entry `index` of a table held as bytes has COPIED set, read from the one byte that holds bit 63 (the
 * entry is big-endian): for a hot path that skips entries without it, before decoding anything or making a view.
 */
export function l2EntryCopied(table: Uint8Array, index: number, extendedL2: boolean): boolean {
  return (table[index * entryBytes(extendedL2)]! & (L2_COPIED_HI >>> 24)) !== 0;
}

/** An entry's high half with COPIED set or cleared. */
export function withL2Copied(hi: number, copied: boolean): number {
  return (copied ? hi | L2_COPIED_HI : hi & ~L2_COPIED_HI) >>> 0;
}
