import { inflateSync } from 'fflate';
import * as fzstd from 'fzstd';
import { undecodableCluster, type Codec, type Codecs } from './codecs.js';
import { frameByFrameZstdCodec, fzstdFrameDecoder } from './zstd-frame.js';

/**
 * Raw deflate in pure JS (fflate): for browsers and workers without Node's zlib. It inflates straight into the
 * cluster, which also bounds a hostile stream: output past the cluster is dropped, as QEMU drops it.
 */
export const portableZlibCodec: Codec = {
  decompress(src, dst) {
    let out: Uint8Array;
    try {
      out = inflateSync(src, { out: dst });
    } catch (error) {
      throw undecodableCluster(`compressed cluster does not inflate: ${(error as Error).message}`, error);
    }
    if (out.length < dst.length) {
      throw undecodableCluster(`compressed cluster inflates to ${out.length} bytes, not ${dst.length}`);
    }
    if (out.buffer !== dst.buffer || out.byteOffset !== dst.byteOffset) dst.set(out.subarray(0, dst.length));
  },
};

/** zstd in pure JS (fzstd). */
export const portableZstdCodec: Codec = frameByFrameZstdCodec(fzstdFrameDecoder(fzstd));

/** Decompressors that run anywhere (no Node, no native code). */
export function portableCodecs(): Codecs {
  return { zlib: portableZlibCodec, zstd: portableZstdCodec };
}
