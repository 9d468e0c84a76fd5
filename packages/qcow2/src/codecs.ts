import type { CompressionType } from '@q/format';
import { DiskError } from '@q/raw';

/**
 * A decompressor for one compression type, injected so the engine never imports Node's zlib or a native module
 * and runs unchanged in a browser. `decompress` must fill all of `dst` (one cluster) from the start of `src` and
 * ignore what follows the compressed stream in `src`: the descriptor rounds the data up to whole sectors, so the
 * tail holds padding or the next cluster's bytes. It throws when `src` yields fewer than `dst.length` bytes; the
 * engine reports a DiskError E_CORRUPT from it as reason 'compressed-data' (the image is not marked corrupt).
 */
export interface Codec {
  decompress(src: Uint8Array, dst: Uint8Array): void | Promise<void>;
}

export type Codecs = Partial<Record<CompressionType, Codec>>;

/**
 * The error a codec throws for bytes that do not decompress to one cluster. The reason tells the engine the
 * metadata is sound (QEMU fails such a read with EIO and does not mark the image corrupt).
 */
export function undecodableCluster(message: string, cause?: unknown): DiskError {
  return new DiskError('E_CORRUPT', message, { reason: 'compressed-data', cause });
}
