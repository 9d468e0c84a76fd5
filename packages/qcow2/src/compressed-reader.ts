import type { CompressedExtent } from '@q/mapper';
import { readPadded, type BlockFile } from '@q/raw';
import type { Codec } from './codecs.js';

/** Decompressed clusters kept for reads that cover one compressed cluster in several pieces. */
const KEPT_CLUSTERS = 4;

/**
 * Reads compressed clusters: fetch the descriptor's bytes, decompress one whole cluster, copy out the part asked
 * for. The last few clusters stay decompressed (and a cluster being decompressed is shared by concurrent reads),
 * so sequential sub-cluster reads decompress each cluster once.
 */
export class CompressedReader {
  private readonly file: BlockFile;
  private readonly codec: Codec;
  private readonly clusterSize: number;
  private readonly kept = new Map<number, Promise<Uint8Array>>();

  constructor(file: BlockFile, codec: Codec, clusterSize: number) {
    this.file = file;
    this.codec = codec;
    this.clusterSize = clusterSize;
  }

  /** Fills `dst` with the bytes of `extent` (part of one compressed cluster). */
  async read(dst: Uint8Array, extent: CompressedExtent): Promise<void> {
    const start = extent.guestOffset - extent.clusterGuestOffset;
    if (start === 0 && dst.length === this.clusterSize) {
      // A whole cluster needs no intermediate buffer and is not worth keeping.
      const kept = this.kept.get(extent.hostOffset);
      if (kept !== undefined) dst.set(await kept);
      else await this.decompressInto(dst, extent);
      return;
    }
    const cluster = await this.cluster(extent);
    dst.set(cluster.subarray(start, start + dst.length));
  }

  private cluster(extent: CompressedExtent): Promise<Uint8Array> {
    let pending = this.kept.get(extent.hostOffset);
    if (pending === undefined) {
      const cluster = new Uint8Array(this.clusterSize);
      pending = this.decompressInto(cluster, extent).then(() => cluster);
      pending.catch(() => this.kept.delete(extent.hostOffset));
      this.kept.set(extent.hostOffset, pending);
      if (this.kept.size > KEPT_CLUSTERS) {
        const oldest = this.kept.keys().next().value;
        if (oldest !== undefined) this.kept.delete(oldest);
      }
    }
    return pending;
  }

  private async decompressInto(dst: Uint8Array, extent: CompressedExtent): Promise<void> {
    const compressed = new Uint8Array(extent.compressedBytes);
    // The last sector of the last compressed cluster may end past the end of the file; its tail is padding.
    await readPadded(this.file, compressed, extent.hostOffset);
    await this.codec.decompress(compressed, dst);
  }

  /** Forgets decompressed clusters (after the clusters they came from may have changed). */
  clear(): void {
    this.kept.clear();
  }
}
