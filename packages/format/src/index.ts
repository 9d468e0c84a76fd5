export * from './limits.js';
export { readU64, writeU64, joinU64, view, alignUp, isAligned, decodeString, encodeString } from './bytes.js';
export { decodeHeader, encodeHeader, hasQcowMagic, compressionTypeOf, HEADER_PROBE_BYTES, type QcowHeader } from './header.js';
export {
  decodeHeaderExtensions,
  decodeBackingFileName,
  type HeaderExtension,
  type HeaderExtensions,
  type FeatureName,
  type BitmapsExtension,
} from './header-extensions.js';
export { checkIncompatibleFeatures } from './features.js';
export { geometryOf, l1EntriesFor, type Geometry } from './geometry.js';
export { decodeL1Entry, l1EntryOffset, encodeL1Entry, L1_COPIED_HI, type L1Entry } from './l1-entry.js';
export {
  decodeL2Entry,
  decodeCompressedDescriptor,
  encodeCompressedDescriptor,
  L2_COPIED_HI,
  L2_COMPRESSED_HI,
  L2_ZERO_LO,
  ALL_SUBCLUSTERS,
  type L2Entry,
  type L2EntryContext,
} from './l2-entry.js';
export { getRefcount, setRefcount, maxRefcount } from './refcount-block.js';
export { decodeRefcountTable, encodeRefcountTable } from './refcount-table.js';
export { decodeSnapshotTable, encodeSnapshotTable, measureSnapshotTable, snapshotEntrySize, type SnapshotEntry } from './snapshot-table.js';
export {
  decodeBitmapDirectory,
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_IN_USE,
  BITMAP_FLAG_EXTRA_DATA_COMPATIBLE,
  type BitmapEntry,
} from './bitmap-directory.js';
