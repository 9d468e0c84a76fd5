import { maxRefcount } from '@q/format';
import { DiskError, hex } from '@q/raw';
import { coverTo } from './host-allocation.js';
import type { WritePath } from './write-path.js';

/**
 * Stores whole guest clusters compressed (`qemu-img convert -c` into an existing image, or any caller holding
 * compressed bytes). Consecutive compressed clusters are packed byte after byte into shared host clusters, as
 * QEMU packs them; each host cluster the bytes touch gets one more reference (spec, "Compressed Clusters
 * Descriptor"). Crash order: the refcounts are raised (and synced before any L2 table is written back, as for
 * every allocation) and the data written before the L2 entry names them; the old entry's clusters are released
 * only after the table dropping them is durable (WritePath.changeEntry).
 */
export class CompressedWriter {
  /** Where the last compressed data ended, while the next may follow it in the same host cluster. */
  private runEnd: number | undefined;
  /**
   * The compressed cluster whose data ends the run: its guest cluster, where its data starts, and whether its L2
   * entry is written yet. While that entry still names the data, the run's last host cluster has held a reference
   * all along, so it cannot have been freed and handed out for something else (runIsAlive).
   */
  private runOwner: { cluster: number; host: number; settled: boolean } | undefined;

  constructor(private readonly path: WritePath) {}

  async write(cluster: number, compressed: Uint8Array): Promise<void> {
    const { geometry, file, lock, metadata } = this.path.p;
    if (geometry.externalDataFile) throw new DiskError('E_UNSUPPORTED', 'compressed clusters cannot be written with an external data file');
    if (compressed.length < 1 || compressed.length > geometry.clusterSize) {
      throw new DiskError('E_INVALID', `${compressed.length} compressed bytes do not fit one ${geometry.clusterSize}-byte cluster`);
    }
    const owner = await lock.run(async () => {
      const placed = { cluster, host: await this.place(compressed.length), settled: false };
      this.runOwner = placed;
      return placed;
    });
    const { host } = owner;
    try {
      const overlapped = metadata.overlap(host, compressed.length);
      if (overlapped !== undefined) throw new DiskError('E_CORRUPT', `write at ${hex(host)} would overwrite the ${overlapped}`, { file: file.name, offset: host });
      await file.write(compressed, host);
      await this.path.changeEntry(cluster, () => ({ hostOffset: host, compressedBytes: compressed.length, copied: false }));
      owner.settled = true;
    } catch (error) {
      // Whatever happened to these bytes, nothing follows them.
      if (this.runOwner === owner) this.runEnd = undefined;
      throw error;
    }
  }

  /**
   * Whether the next compressed data may still follow the run: its last host cluster must not have been freed
   * since (the clusters sharing it overwritten or discarded), or the allocator may have handed it out as a data
   * cluster or a table meanwhile, and packing into it would overwrite them. The owner's entry still naming its
   * data proves the cluster held a reference throughout (an entry put back by a snapshot apply was held by the
   * snapshot meanwhile); an owner whose entry is still being written holds the reference counted at placing.
   */
  private async runIsAlive(): Promise<boolean> {
    const owner = this.runOwner;
    if (owner === undefined) return false;
    if (!owner.settled) return true;
    const { clusterSize } = this.path.p.geometry;
    const [extent] = await this.path.p.mapper.map(owner.cluster * clusterSize, clusterSize);
    return extent?.kind === 'compressed' && extent.hostOffset === owner.host;
  }

  /** Finds room for `length` bytes and counts their references. Under the metadata lock. */
  private async place(length: number): Promise<number> {
    const { geometry, refcounts, header } = this.path.p;
    const { clusterSize } = geometry;
    const max = maxRefcount(header.header.refcountOrder);
    let host: number | undefined;
    const end = this.runEnd;
    if (end !== undefined && end % clusterSize !== 0 && (await this.runIsAlive())) {
      const last = Math.floor(end / clusterSize);
      const room = clusterSize - (end % clusterSize);
      if ((await refcounts.get(last)) < max) {
        if (length <= room) host = end;
        else {
          const more = Math.ceil((length - room) / clusterSize);
          const next = await refcounts.allocate(more);
          if (next === (last + 1) * clusterSize) host = end;
          // Not adjacent: give them back and start afresh below.
          else for (let i = 0; i < more; i++) await refcounts.adjust(next / clusterSize + i, -1);
        }
        if (host !== undefined) await refcounts.adjust(last, 1);
      }
    }
    if (host === undefined) host = await refcounts.allocate(Math.ceil(length / clusterSize));
    await coverTo(this.path.p, Math.ceil((host + length) / clusterSize) * clusterSize, length);
    this.runEnd = host + length;
    return host;
  }
}
