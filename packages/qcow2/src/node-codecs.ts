import { createRequire } from 'node:module';
import type * as NodeZlib from 'node:zlib';
import { undecodableCluster, type Codec, type Codecs } from './codecs.js';
import { frameByFrameZstdCodec, fzstdFrameDecoder, type FzstdModule } from './zstd-frame.js';
import { reusableRawInflater, type RawInflater } from './zlib-inflater.js';

const require = createRequire(import.meta.url);
/** node:zlib, loaded on the first compressed cluster (most images have none; startup time counts for a CLI). */
let zlib: typeof NodeZlib | undefined;
/** The reused inflate context (zlib-inflater.ts); null where this Node has none to reuse. */
let inflater: RawInflater | null | undefined;

/**
 * zlib through Node's own zlib. QEMU writes raw deflate (no zlib header) with a 4 KiB window; inflating with the
 * default window reads those streams, and inflate stops at the end of the stream, ignoring the sector padding.
 */
export const nodeZlibCodec: Codec = {
  decompress(src, dst) {
    zlib ??= require('node:zlib') as typeof NodeZlib;
    inflater ??= reusableRawInflater(zlib) ?? null;
    if (inflater !== null) {
      let produced: number;
      try {
        produced = inflater(src, dst);
      } catch (error) {
        throw undecodableCluster(`compressed cluster does not inflate: ${(error as Error).message}`, error);
      }
      if (produced < dst.length) throw undecodableCluster(`compressed cluster inflates to ${produced} bytes, not ${dst.length}`);
      return;
    }
    let out: Uint8Array;
    try {
      // A cluster never inflates to more than itself; the bound keeps a hostile stream from ballooning. One output
      // chunk of a cluster's size, not 16 KiB pieces joined afterwards: less garbage per cluster.
      out = zlib.inflateRawSync(src, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: dst.length * 2, chunkSize: Math.max(64, dst.length) });
    } catch (error) {
      throw undecodableCluster(`compressed cluster does not inflate: ${(error as Error).message}`, error);
    }
    if (out.length < dst.length) {
      throw undecodableCluster(`compressed cluster inflates to ${out.length} bytes, not ${dst.length}`);
    }
    dst.set(out.subarray(0, dst.length));
  },
};

interface NativeDecompressContext {
  decompressStream(dst: Uint8Array, src: Uint8Array): [returnValue: number, produced: number, consumed: number];
  reset(directive: number): void;
}

/**
 * zstd through the native `zstd-napi` binding when it built, else the pure-JS `fzstd` (loaded only then). Both
 * decode frame after frame until one cluster has come out, as QEMU does.
 */
export function nodeZstdCodec(): Codec {
  const native = loadNativeZstd();
  if (native !== undefined) return native;
  return frameByFrameZstdCodec(fzstdFrameDecoder(require('fzstd') as FzstdModule));
}

function loadNativeZstd(): Codec | undefined {
  let context: NativeDecompressContext;
  try {
    const binding = require('zstd-napi/binding') as { DCtx: new () => NativeDecompressContext };
    context = new binding.DCtx();
  } catch {
    return undefined;
  }
  return {
    decompress(src, dst) {
      context.reset(1); // ZSTD_reset_session_only: a fresh frame, same context
      let produced = 0;
      let consumed = 0;
      while (produced < dst.length) {
        let result: [number, number, number];
        try {
          result = context.decompressStream(dst.subarray(produced), src.subarray(consumed));
        } catch (error) {
          throw undecodableCluster(`compressed cluster does not decompress: ${(error as Error).message}`, error);
        }
        const [, madeNow, readNow] = result;
        produced += madeNow;
        consumed += readNow;
        if (madeNow === 0 && readNow === 0) {
          throw undecodableCluster(`compressed cluster decompresses to ${produced} bytes, not ${dst.length}`);
        }
      }
    },
  };
}

/**
 * Decompressors for every compression type qcow2 knows, backed by Node. The zstd decoder (a native module) loads
 * on the first compressed cluster, so opening images that have none costs nothing.
 */
export function nodeCodecs(): Codecs {
  let zstd: Codec | undefined;
  return {
    zlib: nodeZlibCodec,
    zstd: {
      decompress(src, dst) {
        zstd ??= nodeZstdCodec();
        return zstd.decompress(src, dst);
      },
    },
  };
}
