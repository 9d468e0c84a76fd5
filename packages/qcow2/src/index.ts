export { Qcow2Image, DEFAULT_L2_CACHE_BYTES, type Qcow2OpenOptions } from './qcow2-image.js';
export { readImageMetadata, type ImageMetadata } from './image-metadata.js';
export { codecFor, type Codec, type Codecs } from './codecs.js';
export { portableCodecs, portableZlibCodec, portableZstdCodec } from './portable-codecs.js';
export { zstdFrameLength } from './zstd-frame.js';
