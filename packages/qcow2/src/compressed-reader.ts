import type { CompressedExtent } from '@q/mapper';
import { alignedBytes, DiskError, isDiskError, readPadded, type BlockFile } from '@q/raw';
import type { Codec } from './codecs.js';

/** Decompressed clusters kept for reads that cover one compressed cluster in several pieces. */
const KEPT_CLUSTERS = 4;
/** Compressed clusters whose data lie this close together on the host are fetched with one read. */
const MAX_GAP = 4096;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Bytes of compressed-data buffers kept for the next batches (beyond it, a released buffer is left to the GC). */
const KEPT_SCRATCH_BYTES = 16 * 1024 * 1024;

/** One compressed extent to fill, as part of a larger read. */
export interface CompressedPart {
  dst: Uint8Array;
  extent: CompressedExtent;
}

/**
 * Reads compressed clusters: fetch the descriptors' bytes, decompress whole clusters, copy out the parts asked
 * for. QEMU writes compressed clusters one after another, so the data of neighbouring clusters is fetched in one
 * read instead of one per cluster. The last few clusters stay decompressed (shared by concurrent reads), so
 * sequential sub-cluster reads decompress each cluster once.
 */
export class CompressedReader {
  private readonly file: BlockFile;
  private readonly codec: Codec;
  private readonly clusterSize: number;
  private readonly kept = new Map<number, Promise<Uint8Array>>();
  /**
   * Buffers for a batch's compressed bytes, reused (each held by one batch at a time): a fresh one per batch, up
   * to 4 MiB every few clusters, was garbage V8 frees only at its next collection (convert -O raw of a 2 GiB zstd
   * image: 71 -> 64 MiB of ArrayBuffers at the peak; peak RSS 142 -> 138 MiB, medians of 5).
   */
  private readonly scratch: Uint8Array[] = [];
  private scratchBytes = 0;

  constructor(file: BlockFile, codec: Codec, clusterSize: number) {
    this.file = file;
    this.codec = codec;
    this.clusterSize = clusterSize;
  }

  /** Fills every part; parts are in guest order, as the mapper returns them. */
  async read(parts: CompressedPart[]): Promise<void> {
    const whole: CompressedPart[] = [];
    const pending: Promise<void>[] = [];
    for (const part of parts) {
      const start = part.extent.guestOffset - part.extent.clusterGuestOffset;
      const kept = this.kept.get(part.extent.hostOffset);
      if (start === 0 && part.dst.length === this.clusterSize && kept === undefined) {
        whole.push(part);
      } else {
        pending.push(this.cluster(part.extent).then((cluster) => part.dst.set(cluster.subarray(start, start + part.dst.length))));
      }
    }
    for (const batch of batches(whole)) pending.push(this.readBatch(batch));
    await Promise.all(pending);
  }

  /** Reads the compressed bytes of a run of neighbouring clusters at once and decompresses each in place. */
  private async readBatch(batch: CompressedPart[]): Promise<void> {
    const first = batch[0]!.extent;
    const last = batch[batch.length - 1]!.extent;
    const start = first.hostOffset;
    const buffer = this.takeScratch(last.hostOffset + last.compressedBytes - start);
    try {
      const bytes = buffer.subarray(0, last.hostOffset + last.compressedBytes - start);
      // The last sector of the last compressed cluster may end past the end of the file; its tail is padding.
      await readPadded(this.file, bytes, start);
      for (const { dst, extent } of batch) {
        const at = extent.hostOffset - start;
        try {
          await this.codec.decompress(bytes.subarray(at, at + extent.compressedBytes), dst);
        } catch (error) {
          throw compressedDataError(error, extent.hostOffset);
        }
      }
    } finally {
      this.releaseScratch(buffer);
    }
  }

  /** The smallest kept buffer of at least `length` bytes, or a new one (rounded up to 64 KiB, to fit later batches). */
  private takeScratch(length: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.scratch.length; i++) {
      const size = this.scratch[i]!.length;
      if (size >= length && (best < 0 || size < this.scratch[best]!.length)) best = i;
    }
    if (best < 0) return alignedBytes(Math.ceil(length / 65536) * 65536);
    const [buffer] = this.scratch.splice(best, 1);
    this.scratchBytes -= buffer!.length;
    return buffer!;
  }

  private releaseScratch(buffer: Uint8Array): void {
    if (this.scratchBytes + buffer.length > KEPT_SCRATCH_BYTES) return;
    this.scratch.push(buffer);
    this.scratchBytes += buffer.length;
  }

  private cluster(extent: CompressedExtent): Promise<Uint8Array> {
    let pending = this.kept.get(extent.hostOffset);
    if (pending === undefined) {
      const cluster = new Uint8Array(this.clusterSize);
      pending = this.readBatch([{ dst: cluster, extent }]).then(() => cluster);
      pending.catch(() => this.kept.delete(extent.hostOffset));
      this.kept.set(extent.hostOffset, pending);
      if (this.kept.size > KEPT_CLUSTERS) {
        const oldest = this.kept.keys().next().value;
        if (oldest !== undefined) this.kept.delete(oldest);
      }
    }
    return pending;
  }

  /** Forgets decompressed clusters (after the clusters they came from may have changed). */
  clear(): void {
    this.kept.clear();
  }
}

/**
 * A codec's failure, classified: whatever an injected codec throws for bad input is about the compressed bytes,
 * not the metadata that found them (reason 'compressed-data': the image is not marked corrupt). Errors that are
 * not about the data (a DiskError of another code, a non-DiskError bug) pass through unchanged.
 */
function compressedDataError(error: unknown, hostOffset: number): unknown {
  if (!isDiskError(error) || error.code !== 'E_CORRUPT' || error.reason !== undefined) return error;
  return new DiskError('E_CORRUPT', error.message, { file: error.file, offset: error.offset ?? hostOffset, reason: 'compressed-data', cause: error });
}

/** Groups parts whose compressed data follow each other on the host (small gaps allowed) into bounded runs. */
function batches(parts: CompressedPart[]): CompressedPart[][] {
  const result: CompressedPart[][] = [];
  let current: CompressedPart[] = [];
  let currentStart = 0;
  let currentEnd = 0;
  for (const part of parts) {
    const { hostOffset, compressedBytes } = part.extent;
    const end = hostOffset + compressedBytes;
    const joins = current.length > 0 && hostOffset >= currentStart && hostOffset - currentEnd <= MAX_GAP && end - currentStart <= MAX_BATCH_BYTES;
    if (!joins) {
      if (current.length > 0) result.push(current);
      current = [];
      currentStart = hostOffset;
      currentEnd = end;
    }
    current.push(part);
    currentEnd = Math.max(currentEnd, end);
  }
  if (current.length > 0) result.push(current);
  return result;
}
