import { DiskError } from '@q/raw';
import { joinU64 } from './bytes.js';

/** Bit 62 of an L2 entry: the rest of the entry is a compressed cluster descriptor. */
export const L2_COMPRESSED_HI = 0x4000_0000;

/**
 * A compressed cluster descriptor's fields, split without judgement (spec: "Compressed Clusters Descriptor"):
 * with x = 62 - (cluster_bits - 8), bits 0..x-1 hold the host byte offset and bits x..61 the number of additional
 * 512-byte sectors. For readers that must survive any bits (`qcow check`); the engine decodes through
 * decodeCompressedDescriptor, which refuses what it cannot address.
 */
export interface CompressedDescriptorFields {
  /** Bits 32 and up of the host byte offset (at most 29 bits, for 512-byte clusters). */
  offsetHi: number;
  /** Bits 0-31 of the host byte offset. */
  offsetLo: number;
  /** Additional 512-byte sectors after the one holding the offset. */
  sectors: number;
  /** Bytes the data runs over: from the offset to the end of its last sector. */
  bytes: number;
}

/** How many bits of the descriptor's high half hold the offset: x - 32. */
function offsetBitsHigh(clusterBits: number): number {
  return 62 - (clusterBits - 8) - 32;
}

export function compressedDescriptorFields(hi: number, lo: number, clusterBits: number): CompressedDescriptorFields {
  const bitsHigh = offsetBitsHigh(clusterBits);
  const offsetHi = hi & ((1 << bitsHigh) - 1);
  const sectors = (hi & 0x3fff_ffff) >>> bitsHigh;
  return { offsetHi, offsetLo: lo >>> 0, sectors, bytes: (sectors + 1) * 512 - (lo & 511) };
}

/**
 * The host byte offset and length of a compressed cluster's data: (sectors + 1) * 512 - (offset % 512) bytes
 * from the offset. Offsets above bit 55 are reserved-zero (possible only for small clusters); above 2^53 we cannot
 * address them. QEMU reads such data (past any file end) and fails to decompress it, so the error carries the
 * reason 'compressed-offset' (the image is not marked corrupt).
 */
export function decodeCompressedDescriptor(hi: number, lo: number, clusterBits: number): { hostOffset: number; compressedBytes: number } {
  const { offsetHi, offsetLo, bytes } = compressedDescriptorFields(hi, lo, clusterBits);
  if (offsetHi >= 0x20_0000) throw new DiskError('E_CORRUPT', 'compressed cluster offset is beyond 2^53', { reason: 'compressed-offset' });
  return { hostOffset: joinU64(offsetHi, offsetLo), compressedBytes: bytes };
}

/**
 * The two halves of a descriptor for `compressedBytes` of data at `hostOffset`, with the compressed flag (bit 62)
 * set and COPIED clear (the spec never sets COPIED on compressed clusters). The sector count rounds the data up to
 * whole sectors, so a descriptor always covers at least `compressedBytes`.
 */
export function encodeCompressedDescriptor(hostOffset: number, compressedBytes: number, clusterBits: number): [hi: number, lo: number] {
  const bitsHigh = offsetBitsHigh(clusterBits);
  const sectors = Math.ceil(((hostOffset % 512) + compressedBytes) / 512) - 1;
  if (compressedBytes < 1 || sectors >= 2 ** (clusterBits - 8)) {
    throw new DiskError('E_INVALID', `${compressedBytes} compressed bytes do not fit in a descriptor for ${2 ** clusterBits}-byte clusters`);
  }
  if (hostOffset >= 2 ** (bitsHigh + 32)) {
    throw new DiskError('E_INVALID', `compressed data at 0x${hostOffset.toString(16)} is beyond what a descriptor for ${2 ** clusterBits}-byte clusters holds`);
  }
  const hi = Math.floor(hostOffset / 0x1_0000_0000) | (sectors << bitsHigh) | L2_COMPRESSED_HI;
  return [hi >>> 0, hostOffset >>> 0];
}
