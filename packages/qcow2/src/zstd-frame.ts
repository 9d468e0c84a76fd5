import { undecodableCluster, type Codec } from './codecs.js';

/**
 * Length in bytes of the zstd frame at the start of `bytes` (RFC 8878, section 3.1.1), or undefined when the frame
 * runs past the end of `bytes` or is not a zstd frame. Decoders that insist on whole frames and nothing after
 * them need this, because a compressed cluster's data is followed by sector padding.
 */
export function zstdFrameLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < 6) return undefined;
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  if (magic >>> 4 === 0x184d2a5) {
    // Skippable frame: magic, u32 little-endian size, payload.
    if (bytes.length < 8) return undefined;
    const size = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
    return 8 + size <= bytes.length ? 8 + size : undefined;
  }
  if (magic !== 0xfd2fb528) return undefined;
  const descriptor = bytes[4]!;
  const contentSizeFlag = descriptor >>> 6;
  const singleSegment = (descriptor >>> 5) & 1;
  const checksum = (descriptor >>> 2) & 1;
  const dictionaryIdFlag = descriptor & 3;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]!;
  const dictionaryIdBytes = [0, 1, 2, 4][dictionaryIdFlag]!;
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  for (;;) {
    if (at + 3 > bytes.length) return undefined;
    const header = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    const last = header & 1;
    const type = (header >>> 1) & 3;
    const size = header >>> 3;
    if (type === 3) return undefined;
    at += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  at += checksum ? 4 : 0;
  return at <= bytes.length ? at : undefined;
}

/** What a zstd frame header says about the frame's output. */
export interface ZstdFrameHeader {
  /** Decompressed size, when the frame records it. */
  contentSize: number | undefined;
  /** Bytes of history the decoder must keep (what it will allocate). */
  windowSize: number;
}

/** Reads the header of the zstd frame at the start of `bytes` (RFC 8878, 3.1.1.1), or undefined if there is none. */
export function zstdFrameHeader(bytes: Uint8Array): ZstdFrameHeader | undefined {
  if (bytes.length < 6) return undefined;
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  if (magic !== 0xfd2fb528) return undefined;
  const descriptor = bytes[4]!;
  const contentSizeFlag = descriptor >>> 6;
  const singleSegment = (descriptor >>> 5) & 1;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3]!;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]!;
  const sizeAt = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes;
  if (sizeAt + contentSizeBytes > bytes.length) return undefined;
  let contentSize: number | undefined;
  if (contentSizeBytes > 0) {
    contentSize = 0;
    for (let i = contentSizeBytes - 1; i >= 0; i--) contentSize = contentSize * 256 + bytes[sizeAt + i]!;
    if (contentSizeBytes === 2) contentSize += 256;
  }
  let windowSize = contentSize ?? 0;
  if (!singleSegment) {
    const windowDescriptor = bytes[5]!;
    const base = 2 ** (10 + (windowDescriptor >>> 3));
    windowSize = base + (base / 8) * (windowDescriptor & 7);
  }
  return { contentSize, windowSize };
}

/**
 * Streams one whole zstd frame through a decoder, handing each decoded block to `sink`; `sink` returns false to
 * stop early (the cluster is full). The pure-JS fzstd and any similar streaming decoder fit this shape.
 */
export type ZstdFrameDecoder = (frame: Uint8Array, sink: (block: Uint8Array) => boolean) => void;

/** The part of the `fzstd` module we use: its streaming decoder. */
export interface FzstdModule {
  Decompress: new (ondata: (block: Uint8Array, final?: boolean) => unknown) => { push(chunk: Uint8Array, final?: boolean): unknown };
}

/** A ZstdFrameDecoder over fzstd's streaming `Decompress` (passed in, so this module imports nothing). */
export function fzstdFrameDecoder(fzstd: FzstdModule): ZstdFrameDecoder {
  const stop = new Error('enough');
  return (frame, sink) => {
    const decoder = new fzstd.Decompress((block) => {
      if (!sink(block)) throw stop;
    });
    try {
      decoder.push(frame, true);
    } catch (error) {
      if (error !== stop) throw error;
    }
  };
}

/** Largest zstd window accepted: QEMU's frames for a 2 MiB cluster never need more than the cluster itself. */
const MAX_WINDOW = 32 * 1024 * 1024;

/**
 * A zstd Codec over a streaming frame decoder: cut the compressed data frame by frame and decode until a cluster
 * has come out, as QEMU decodes. A frame that declares more output than the cluster has room for, or a window
 * larger than any cluster needs, is corrupt: refusing it up front keeps a lying header from costing memory.
 */
export function frameByFrameZstdCodec(decodeFrame: ZstdFrameDecoder): Codec {
  return {
    decompress(src, dst) {
      let produced = 0;
      let at = 0;
      while (produced < dst.length) {
        const rest = src.subarray(at);
        const frameLength = zstdFrameLength(rest);
        if (frameLength === undefined) {
          throw undecodableCluster(`compressed cluster holds no complete zstd frame (got ${produced} of ${dst.length} bytes)`);
        }
        const header = zstdFrameHeader(rest);
        if (header !== undefined) {
          if (header.contentSize !== undefined && header.contentSize > dst.length - produced) {
            throw undecodableCluster(`compressed cluster's zstd frame declares ${header.contentSize} bytes, more than a cluster`);
          }
          if (header.windowSize > MAX_WINDOW) {
            throw undecodableCluster(`compressed cluster's zstd frame needs a ${header.windowSize}-byte window`);
          }
        }
        try {
          decodeFrame(rest.subarray(0, frameLength), (block) => {
            const take = Math.min(block.length, dst.length - produced);
            dst.set(block.subarray(0, take), produced);
            produced += take;
            return produced < dst.length;
          });
        } catch (error) {
          throw undecodableCluster(`compressed cluster does not decompress: ${(error as Error).message}`, error);
        }
        at += frameLength;
      }
    },
  };
}
