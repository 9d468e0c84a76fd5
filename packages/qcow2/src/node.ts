/** Node-only pieces: `@q/qcow2/node`. The engine itself never imports these. */
export { nodeCodecs, nodeZlibCodec, nodeZstdCodec } from './node-codecs.js';
export { nodeCompressor, nodeZlibCompressor, nodeZstdCompressor } from './node-compressors.js';
