/** `@q/qcow2/portable`: pure-JS decompressors for browsers and workers (kept out of the main entry so Node users
 * of `@q/qcow2/node` never parse them). */
export { portableCodecs, portableZlibCodec, portableZstdCodec } from './portable-codecs.js';
