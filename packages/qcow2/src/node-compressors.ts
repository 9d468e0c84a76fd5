import { createRequire } from 'node:module';
import type * as NodeZlib from 'node:zlib';
import type { CompressionType } from '@q/format';
import { DiskError } from '@q/raw';
import { worthCompressing, type ClusterCompressor } from './cluster-compressor.js';

const require = createRequire(import.meta.url);

/**
 * zlib as QEMU writes it: raw deflate (no zlib header), window bits 12 (the spec forbids a larger window, so
 * readers can use 4 KiB of history), the default level. qemu-img's output sizes match this within bytes.
 */
export function nodeZlibCompressor(): ClusterCompressor {
  const zlib = require('node:zlib') as typeof NodeZlib;
  const options = { windowBits: 12, level: zlib.constants.Z_DEFAULT_COMPRESSION, memLevel: 9 };
  return {
    compress(cluster) {
      const out = zlib.deflateRawSync(cluster, options);
      return worthCompressing(out.length, cluster.length) ? new Uint8Array(out.buffer, out.byteOffset, out.length) : undefined;
    },
  };
}

interface NativeCompressContext {
  compress2(dst: Uint8Array, src: Uint8Array): number;
}

/**
 * zstd through the native `zstd-napi` binding: one frame per cluster at the default level, with the content size
 * in the frame header (as QEMU's frames carry it). Throws E_UNSUPPORTED when the binding is not installed.
 */
export function nodeZstdCompressor(): ClusterCompressor {
  let context: NativeCompressContext;
  try {
    const binding = require('zstd-napi/binding') as { CCtx: new () => NativeCompressContext };
    context = new binding.CCtx();
  } catch (error) {
    throw new DiskError('E_UNSUPPORTED', 'zstd compression needs the zstd-napi package', { cause: error });
  }
  let scratch = new Uint8Array(0);
  return {
    compress(cluster) {
      // A frame of incompressible data is the data plus a few header bytes; leave room for it.
      if (scratch.length < cluster.length + 1024) scratch = new Uint8Array(cluster.length + 1024);
      const length = context.compress2(scratch, cluster);
      return worthCompressing(length, cluster.length) ? scratch.slice(0, length) : undefined;
    },
  };
}

/** The Node compressor for a compression type. */
export function nodeCompressor(type: CompressionType): ClusterCompressor {
  return type === 'zstd' ? nodeZstdCompressor() : nodeZlibCompressor();
}
