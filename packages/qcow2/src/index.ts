export { Qcow2Image } from './qcow2-image.js';
export type { BitmapInfo, BitmapFlag } from './bitmap-views.js';
export type { DirtyExtent } from '@q/bitmaps';
export { DEFAULT_L2_CACHE_BYTES, type Qcow2OpenOptions } from './qcow2-open.js';
export { readImageMetadata, type ImageMetadata } from './image-metadata.js';
export type { Codec, Codecs } from './codecs.js';
export {
  zstdFrameLength,
  zstdFrameHeader,
  frameByFrameZstdCodec,
  fzstdFrameDecoder,
  type ZstdFrameHeader,
  type ZstdFrameDecoder,
} from './zstd-frame.js';
export { createQcow2 } from './create-qcow2.js';
export { writeEmptyImage, newImageHeaderCluster, checkCreateOptions, defaultCreateOptions, type CreateOptions, type HeaderLayout } from './create-image.js';
export type { Preallocation } from './preallocate.js';
export { memoryImage } from './memory-image.js';
export { openImage, type OpenImageOptions, type ImageLocks, type SnapshotKey } from './open-image.js';
export { DEFAULT_CODECS } from './default-codecs.js';
export { SequentialImageWriter, type SequentialImageOptions, type SequentialWriteOptions } from './sequential-writer.js';
export { CompressedPacker } from './compressed-packer.js';
export { worthCompressing, type ClusterCompressor } from './cluster-compressor.js';
export { measureQcow2, fullMetadataBytes, refcountMetadataClusters, bitmapsBytes, type MeasureLayout, type Measurement } from './measure.js';
export type { AmendChange } from './amend.js';
export { rewriteRefcountWidth } from './refcount-width.js';
