import { DiskError } from '@q/raw';
import { joinU64 } from './bytes.js';

export const L2_COPIED_HI = 0x8000_0000;
export const L2_COMPRESSED_HI = 0x4000_0000;
export const L2_ZERO_LO = 0x0000_0001;
const OFFSET_HI_MASK = 0x00ff_ffff;
const OFFSET_LO_MASK = 0xffff_fe00;
/** Bits 1-8 and 56-61 of a standard entry. */
const RESERVED_HI_MASK = 0x3f00_0000;
const RESERVED_LO_MASK = 0x0000_01fe;
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

export interface L2EntryContext {
  clusterBits: number;
  extendedL2: boolean;
  /** With an external data file, host offset 0 with COPIED set is a real cluster (guest offset 0). */
  externalDataFile: boolean;
}

/**
 * Decodes entry `index` of an L2 table. Throws E_CORRUPT for the states QEMU also refuses to read: a subcluster
 * both allocated and zero, alloc bits on an unallocated cluster, a host offset not on a cluster boundary.
 */
export function decodeL2Entry(table: DataView, index: number, context: L2EntryContext): L2Entry {
  const at = index * (context.extendedL2 ? 16 : 8);
  const hi = table.getUint32(at);
  const lo = table.getUint32(at + 4);
  const copied = (hi & L2_COPIED_HI) !== 0;
  if ((hi & L2_COMPRESSED_HI) !== 0) {
    const { hostOffset, compressedBytes } = decodeCompressedDescriptor(hi, lo, context.clusterBits);
    return { compressed: true, hostOffset, compressedBytes, copied, allocMask: 0, zeroMask: 0, reservedBits: false };
  }
  const high = hi & OFFSET_HI_MASK;
  if (high >= 0x20_0000) throw new DiskError('E_TOO_LARGE', 'data cluster offset is beyond 2^53');
  const hostOffset = joinU64(high, (lo & OFFSET_LO_MASK) >>> 0);
  const reservedBits = (hi & RESERVED_HI_MASK) !== 0 || (lo & RESERVED_LO_MASK) !== 0;
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
 * Compressed cluster descriptor (spec: "Compressed Clusters Descriptor"): with x = 62 - (cluster_bits - 8), bits
 * 0..x-1 are the host byte offset and bits x..61 the number of additional 512-byte sectors. The data runs from the
 * offset to the end of the last sector: (sectors + 1) * 512 - (offset % 512) bytes.
 */
export function decodeCompressedDescriptor(hi: number, lo: number, clusterBits: number): { hostOffset: number; compressedBytes: number } {
  const offsetBitsHigh = 62 - (clusterBits - 8) - 32;
  const offsetHigh = hi & ((1 << offsetBitsHigh) - 1);
  // Offsets above bit 55 are reserved-zero (possible only for small clusters); above 2^53 we cannot address. QEMU
  // reads such data (past any file end) and fails to decompress it: the reason says so (see DiskErrorReason).
  if (offsetHigh >= 0x20_0000) throw new DiskError('E_CORRUPT', 'compressed cluster offset is beyond 2^53', { reason: 'compressed-offset' });
  const hostOffset = joinU64(offsetHigh, lo >>> 0);
  const sectors = (hi & 0x3fff_ffff) >>> offsetBitsHigh;
  return { hostOffset, compressedBytes: (sectors + 1) * 512 - (hostOffset % 512) };
}

export function encodeCompressedDescriptor(hostOffset: number, compressedBytes: number, clusterBits: number): [hi: number, lo: number] {
  const offsetBitsHigh = 62 - (clusterBits - 8) - 32;
  const sectors = Math.ceil(((hostOffset % 512) + compressedBytes) / 512) - 1;
  if (sectors >= 2 ** (clusterBits - 8)) {
    throw new DiskError('E_INVALID', `${compressedBytes} compressed bytes do not fit in a descriptor for ${2 ** clusterBits}-byte clusters`);
  }
  const hi = Math.floor(hostOffset / 0x1_0000_0000) | (sectors << offsetBitsHigh) | L2_COMPRESSED_HI;
  return [hi >>> 0, hostOffset >>> 0];
}
