import { deflateRawSync } from 'node:zlib';
import { nodeCompressor } from '@q/qcow2/node';

/**
 * Compressed streams for whole clusters filled with one byte (the guest model's unit), of a chosen size: a real
 * compressor squeezes such a cluster to a few dozen bytes, which never exercises compressed data that crosses a
 * host cluster boundary or leaves a host cluster too full for the next one. So `rawBytes` of the cluster go into
 * the stream uncompressed (a stored deflate block, or a zstd raw block) and the rest is compressed (deflate, or a
 * zstd RLE block): a valid stream of about `rawBytes` bytes that both QEMU and the engine decode to the cluster.
 */
export function compressedCluster(type: 'zlib' | 'zstd', clusterSize: number, pattern: number, rawBytes = 0): Uint8Array {
  const cluster = new Uint8Array(clusterSize).fill(pattern);
  if (rawBytes === 0) {
    const stream = nodeCompressor(type).compress(cluster);
    if (stream === undefined) throw new Error(`a cluster of 0x${pattern.toString(16)} bytes did not compress`);
    return stream;
  }
  if (rawBytes >= clusterSize) throw new Error(`${rawBytes} raw bytes do not leave a compressed part of a ${clusterSize}-byte cluster`);
  return type === 'zlib' ? deflateWithStoredPrefix(cluster, rawBytes) : zstdRawThenRle(clusterSize, pattern, rawBytes);
}

/** Stored blocks (RFC 1951 3.2.4: BFINAL 0, BTYPE 00, LEN, NLEN) for the prefix, then a deflate stream for the rest. */
function deflateWithStoredPrefix(cluster: Uint8Array, rawBytes: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < rawBytes; at += 0xffff) {
    const length = Math.min(0xffff, rawBytes - at);
    const header = new Uint8Array([0, length & 0xff, length >> 8, ~length & 0xff, (~length >> 8) & 0xff]);
    parts.push(header, cluster.subarray(at, at + length));
  }
  // A stored block ends on a byte boundary, so a separate stream (its last block final) can follow it.
  parts.push(deflateRawSync(cluster.subarray(rawBytes), { windowBits: 12 }));
  return concat(parts);
}

/** A zstd frame (RFC 8878): single segment with a 4-byte content size, raw blocks, then RLE blocks (at most 128 KiB each). */
function zstdRawThenRle(clusterSize: number, pattern: number, rawBytes: number): Uint8Array {
  const MAX_BLOCK = 128 * 1024;
  const parts: Uint8Array[] = [new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xa0, clusterSize & 0xff, (clusterSize >> 8) & 0xff, (clusterSize >> 16) & 0xff, (clusterSize >>> 24) & 0xff])];
  const blockHeader = (last: boolean, type: number, size: number): Uint8Array => {
    const value = (last ? 1 : 0) | (type << 1) | (size << 3);
    return new Uint8Array([value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]);
  };
  for (let at = 0; at < rawBytes; at += MAX_BLOCK) {
    const size = Math.min(MAX_BLOCK, rawBytes - at);
    parts.push(blockHeader(false, 0, size), new Uint8Array(size).fill(pattern));
  }
  for (let at = rawBytes; at < clusterSize; at += MAX_BLOCK) {
    const size = Math.min(MAX_BLOCK, clusterSize - at);
    parts.push(blockHeader(at + size === clusterSize, 1, size), new Uint8Array([pattern]));
  }
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
