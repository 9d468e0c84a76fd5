export * from './limits.js';
export { readU64, safeU64, writeU64, joinU64, view, alignUp, isAligned, decodeString, encodeString } from './bytes.js';
export { decodeHeader, encodeHeader, hasQcowMagic, compressionTypeOf, HEADER_PROBE_BYTES, type QcowHeader } from './header.js';
export { HEADER_FIELDS, HEADER_V2_FIELDS_END, readHeaderField, type HeaderField, type WideHeaderField } from './header-fields.js';
export { encodeHeaderFields, type HeaderPatch } from './header-patch.js';
export { encodeHeaderCluster, type HeaderClusterContents, type EncodedHeaderCluster } from './header-cluster.js';
export {
  decodeHeaderExtensions,
  decodeBackingFileName,
  encodeHeaderExtensions,
  encodeFeatureNameTable,
  encodeBitmapsExtension,
  type HeaderExtension,
  type HeaderExtensions,
  type FeatureName,
  type BitmapsExtension,
} from './header-extensions.js';
export { checkIncompatibleFeatures } from './features.js';
export { geometryOf, l1EntriesFor, type Geometry } from './geometry.js';
export {
  decodeL1Entry,
  l1EntryOffset,
  encodeL1Entry,
  writeL1Entry,
  setL1EntryCopied,
  L1_COPIED_HI,
  L1_OFFSET_HI_MASK,
  L1_OFFSET_LO_MASK,
  L1_RESERVED_HI_MASK,
  L1_RESERVED_LO_MASK,
  type L1Entry,
} from './l1-entry.js';
export {
  decodeL2Entry,
  readL2EntryWords,
  encodeL2Entry,
  encodeDataClusterRun,
  setL2EntryCopied,
  l2EntryCopied,
  withL2Copied,
  L2_COPIED_HI,
  L2_COMPRESSED_HI,
  L2_ZERO_LO,
  L2_OFFSET_HI_MASK,
  L2_OFFSET_LO_MASK,
  L2_RESERVED_HI_MASK,
  L2_RESERVED_LO_MASK,
  ALL_SUBCLUSTERS,
  type L2Entry,
  type L2EntryFields,
  type L2EntryWords,
  type L2EntryContext,
} from './l2-entry.js';
export {
  compressedDescriptorFields,
  decodeCompressedDescriptor,
  encodeCompressedDescriptor,
  type CompressedDescriptorFields,
} from './compressed-descriptor.js';
export { getRefcount, getRefcountExact, setRefcount, setRefcountRun, maxRefcount, findZeroRefcount, findNonZeroRefcount } from './refcount-block.js';
export {
  decodeRefcountTable,
  encodeRefcountTable,
  encodeRefcountTableEntry,
  REFCOUNT_TABLE_OFFSET_LO_MASK,
  REFCOUNT_TABLE_RESERVED_LO_MASK,
} from './refcount-table.js';
export { decodeSnapshotTable, encodeSnapshotTable, measureSnapshotTable, snapshotEntrySize, type SnapshotEntry } from './snapshot-table.js';
export {
  decodeSnapshotEntryHead,
  encodeSnapshotEntry,
  decodeSnapshotExtraData,
  writeSnapshotExtraData,
  SNAPSHOT_ENTRY_FIXED_BYTES,
  SNAPSHOT_KNOWN_EXTRA_BYTES,
  SNAPSHOT_NO_ICOUNT,
  type SnapshotEntryHead,
  type StoredSnapshotEntry,
  type SnapshotExtraFields,
} from './snapshot-entry.js';
export {
  decodeBitmapDirectory,
  encodeBitmapDirectory,
  bitmapDirectoryEntrySize,
  BITMAP_TYPE_DIRTY_TRACKING,
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_IN_USE,
  BITMAP_FLAG_EXTRA_DATA_COMPATIBLE,
  type BitmapEntry,
} from './bitmap-directory.js';
export {
  bitmapTableEntryReserved,
  decodeBitmapTableEntry,
  encodeBitmapTable,
  type BitmapTableEntry,
  BITMAP_TABLE_OFFSET_HI_MASK,
  BITMAP_TABLE_OFFSET_LO_MASK,
  BITMAP_TABLE_RESERVED_HI_MASK,
  BITMAP_TABLE_RESERVED_LO_MASK,
  BITMAP_TABLE_ALL_ONES_LO,
} from './bitmap-table-entry.js';
