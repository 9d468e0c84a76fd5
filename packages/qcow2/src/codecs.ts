import type { CompressionType } from '@q/format';

/**
 * A decompressor for one compression type, injected so the engine never imports Node's zlib or a native module
 * and runs unchanged in a browser. `decompress` must fill all of `dst` (one cluster) from the start of `src` and
 * ignore what follows the compressed stream in `src`: the descriptor rounds the data up to whole sectors, so the
 * tail holds padding or the next cluster's bytes. It throws when `src` yields fewer than `dst.length` bytes.
 */
export interface Codec {
  decompress(src: Uint8Array, dst: Uint8Array): void | Promise<void>;
}

export type Codecs = Partial<Record<CompressionType, Codec>>;
