import { inflateSync } from 'fflate';
import { decompress as fzstdDecompress } from 'fzstd';
import { DiskError } from '@q/raw';
import type { Codec, Codecs } from './codecs.js';
import { zstdFrameLength } from './zstd-frame.js';

/** Raw deflate in pure JS (fflate): for browsers and workers without Node's zlib. */
export const portableZlibCodec: Codec = {
  decompress(src, dst) {
    let out: Uint8Array;
    try {
      out = inflateSync(src);
    } catch (error) {
      throw new DiskError('E_CORRUPT', `compressed cluster does not inflate: ${(error as Error).message}`, { cause: error });
    }
    if (out.length < dst.length) {
      throw new DiskError('E_CORRUPT', `compressed cluster inflates to ${out.length} bytes, not ${dst.length}`);
    }
    dst.set(out.subarray(0, dst.length));
  },
};

/** zstd in pure JS (fzstd), frame by frame until a cluster has come out, as QEMU decodes. */
export const portableZstdCodec: Codec = {
  decompress(src, dst) {
    let produced = 0;
    let at = 0;
    while (produced < dst.length) {
      const rest = src.subarray(at);
      const frameLength = zstdFrameLength(rest);
      if (frameLength === undefined) {
        throw new DiskError('E_CORRUPT', `compressed cluster holds no complete zstd frame (got ${produced} of ${dst.length} bytes)`);
      }
      let frame: Uint8Array;
      try {
        frame = fzstdDecompress(rest.subarray(0, frameLength));
      } catch (error) {
        throw new DiskError('E_CORRUPT', `compressed cluster does not decompress: ${(error as Error).message}`, { cause: error });
      }
      dst.set(frame.subarray(0, dst.length - produced), produced);
      produced += Math.min(frame.length, dst.length - produced);
      at += frameLength;
    }
  },
};

/** Decompressors that run anywhere (no Node, no native code). */
export function portableCodecs(): Codecs {
  return { zlib: portableZlibCodec, zstd: portableZstdCodec };
}
