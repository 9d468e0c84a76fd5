import { view } from './bytes.js';

/**
 * Where each fixed header field lives (spec: "Header"): byte offset and width, all big-endian. The fields from
 * byte 72 on exist in v3 headers only, and only below header_length. The one table every header codec and
 * in-place header write takes its offsets from.
 */
export const HEADER_FIELDS = {
  magic: { at: 0, bytes: 4 },
  version: { at: 4, bytes: 4 },
  backingFileOffset: { at: 8, bytes: 8 },
  backingFileSize: { at: 16, bytes: 4 },
  clusterBits: { at: 20, bytes: 4 },
  size: { at: 24, bytes: 8 },
  cryptMethod: { at: 32, bytes: 4 },
  l1Size: { at: 36, bytes: 4 },
  l1TableOffset: { at: 40, bytes: 8 },
  refcountTableOffset: { at: 48, bytes: 8 },
  refcountTableClusters: { at: 56, bytes: 4 },
  nbSnapshots: { at: 60, bytes: 4 },
  snapshotsOffset: { at: 64, bytes: 8 },
  incompatibleFeatures: { at: 72, bytes: 8 },
  compatibleFeatures: { at: 80, bytes: 8 },
  autoclearFeatures: { at: 88, bytes: 8 },
  refcountOrder: { at: 96, bytes: 4 },
  headerLength: { at: 100, bytes: 4 },
  compressionType: { at: 104, bytes: 1 },
} as const;

export type HeaderField = keyof typeof HEADER_FIELDS;

/** The 8-byte fields (offsets, sizes, feature bitmasks). */
export type WideHeaderField = {
  [K in HeaderField]: (typeof HEADER_FIELDS)[K]['bytes'] extends 8 ? K : never;
}[HeaderField];

/** First byte past the fields every version has (a v2 header is exactly this long). */
export const HEADER_V2_FIELDS_END = 72;

/**
 * A field as stored, without judgement, or undefined when `bytes` ends before it: for callers that look at a
 * header before (or instead of) decoding it, and word their own errors (`qcow check` reads the snapshot table
 * fields this way, as QEMU's check does). 8-byte fields come back as bigints, so no bit is lost.
 */
export function readHeaderField(bytes: Uint8Array, field: WideHeaderField): bigint | undefined;
export function readHeaderField(bytes: Uint8Array, field: Exclude<HeaderField, WideHeaderField>): number | undefined;
export function readHeaderField(bytes: Uint8Array, field: HeaderField): number | bigint | undefined {
  const { at, bytes: width } = HEADER_FIELDS[field];
  if (bytes.length < at + width) return undefined;
  const v = view(bytes);
  switch (width) {
    case 8:
      return v.getBigUint64(at);
    case 4:
      return v.getUint32(at);
    default:
      return v.getUint8(at);
  }
}
