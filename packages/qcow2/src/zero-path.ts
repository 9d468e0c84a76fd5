import { ALL_SUBCLUSTERS } from '@q/format';
import { subclusterMask } from '@q/mapper';
import { entryAllocated, type WritePath } from './write-path.js';

/** Clusters whose entries a zero write or discard changes at once (one L2 table's worth with 64 KiB clusters). */
const CLUSTERS_AT_ONCE = 8192;

/**
 * Zero writes and discards, on top of the write path's entry changes. Whole clusters (whole subclusters with
 * extended L2) only change their L2 entry; partial ones are written with zeros (zero writes) or left alone
 * (discards, which are advisory).
 */
export class ZeroPath {
  private readonly writes: WritePath;

  constructor(writes: WritePath) {
    this.writes = writes;
  }

  /**
   * Makes the guest range read as zeros. Whole clusters (whole subclusters with extended L2) only change their
   * L2 entry (the zero flag; v2 has none, so clusters are unallocated where nothing shows through from below);
   * the rest is written with zeros. `unmap` also releases the clusters (QEMU's MAY_UNMAP).
   */
  async writeZeroes(offset: number, length: number, unmap: boolean): Promise<void> {
    await this.forEachCluster(offset, length, async (cluster, at, count, whole) => {
      if (whole) return this.zeroCluster(cluster, unmap);
      const { subclusterSize } = this.writes.p.geometry;
      const first = Math.ceil(at / subclusterSize);
      const last = Math.floor((at + count) / subclusterSize) - 1;
      if (this.writes.p.geometry.extendedL2 && first <= last) {
        await this.writeZeroBytes(cluster, at, first * subclusterSize - at);
        await this.zeroSubclusters(cluster, subclusterMask(first, last));
        await this.writeZeroBytes(cluster, (last + 1) * subclusterSize, at + count - (last + 1) * subclusterSize);
        return;
      }
      await this.writeZeroBytes(cluster, at, count);
    });
    if (this.writes.p.dataFileRaw) await this.writeRawZeros(offset, length);
  }

  /**
   * Why zeroing `[offset, offset + length)` would write data rather than only change L2 entries, or undefined
   * when it would not (the test behind WriteZeroesOptions.fast): partial clusters (subclusters with extended L2)
   * at either end, a raw external data file (its zeros are written), v2 over a backing file (no zero flag).
   */
  whyNotFast(offset: number, length: number): string | undefined {
    const { geometry, header, backing, dataFileRaw } = this.writes.p;
    if (dataFileRaw) return 'the raw external data file gets its zeros written';
    const grain = geometry.extendedL2 ? geometry.subclusterSize : geometry.clusterSize;
    const end = offset + length;
    if (offset % grain !== 0 || (end % grain !== 0 && end !== this.writes.p.virtualSize())) return `the range is not aligned to ${grain} bytes`;
    if (header.header.version === 2 && backing !== undefined && offset < backing.size) return 'a v2 image has no zero flag to hide its backing file';
    return undefined;
  }

  /**
   * Discards whole clusters (a partial cluster is left as it is: discard is advisory). The clusters are released;
   * on v3 they read as zeros afterwards. v2 has no zero flag: without a backing file a released cluster reads as
   * zeros too, with one it would show the backing file's old bytes instead, so QEMU leaves a v2 overlay as it is
   * and so do we.
   */
  async discard(offset: number, length: number): Promise<void> {
    const { geometry, header } = this.writes.p;
    if (header.header.version === 2 && this.writes.p.backing !== undefined) return;
    await this.forEachCluster(offset, length, async (cluster, _at, _count, whole) => {
      if (!whole) return;
      await this.writes.changeEntry(cluster, (entry) => {
        if (!entryAllocated(entry) && this.writes.p.backing === undefined) return undefined;
        if (header.header.version === 2) return { hostOffset: 0, copied: false };
        return geometry.extendedL2 ? { hostOffset: 0, copied: false, allocMask: 0, zeroMask: ALL_SUBCLUSTERS } : { hostOffset: 0, copied: false, zero: true };
      });
    });
    if (this.writes.p.dataFileRaw) await this.writeRawZeros(offset, length);
  }

  private async zeroCluster(cluster: number, unmap: boolean): Promise<void> {
    const { geometry, header, backing } = this.writes.p;
    if (header.header.version === 2) {
      // No zero flag: unallocate where nothing shows through, else write zeros.
      if (backing === undefined || cluster * geometry.clusterSize >= backing.size) {
        return this.writes.changeEntry(cluster, (entry) => (entryAllocated(entry) ? { hostOffset: 0, copied: false } : undefined));
      }
      return this.writeZeroBytes(cluster, 0, geometry.clusterSize);
    }
    await this.writes.changeEntry(cluster, (entry) => {
      const keep = !unmap && !entry.compressed && entry.hostOffset !== 0 && entry.copied;
      const hostOffset = keep ? entry.hostOffset : 0;
      return geometry.extendedL2
        ? { hostOffset, copied: keep, allocMask: 0, zeroMask: ALL_SUBCLUSTERS }
        : { hostOffset, copied: keep, zero: true };
    });
  }

  private async zeroSubclusters(cluster: number, mask: number): Promise<void> {
    let fallback = false;
    await this.writes.changeEntry(cluster, (entry) => {
      if (entry.compressed) {
        fallback = true;
        return undefined;
      }
      return {
        hostOffset: entry.hostOffset,
        copied: entry.copied,
        allocMask: (entry.allocMask & ~mask) >>> 0,
        zeroMask: (entry.zeroMask | mask) >>> 0,
        keepsReference: true,
      };
    });
    if (fallback) {
      const { subclusterSize } = this.writes.p.geometry;
      for (let sub = 0; sub < 32; sub++) {
        if ((mask & (1 << sub)) !== 0) await this.writeZeroBytes(cluster, sub * subclusterSize, subclusterSize);
      }
    }
  }

  private async writeZeroBytes(cluster: number, at: number, count: number): Promise<void> {
    if (count <= 0) return;
    await this.writes.writeCluster(cluster, at, new Uint8Array(count));
  }

  /** With a raw external data file, zeros must be in the data file itself, not only in the flags. */
  private async writeRawZeros(offset: number, length: number): Promise<void> {
    const chunk = new Uint8Array(Math.min(length, 1 << 20));
    for (let at = 0; at < length; at += chunk.length) {
      await this.writes.p.dataFile.write(chunk.subarray(0, Math.min(chunk.length, length - at)), offset + at);
    }
  }

  /**
   * Calls `visit` for each cluster `[offset, offset + length)` touches, with the part it covers and whether that
   * is the whole cluster (the last cluster counts as whole when the range reaches the end of the disk).
   */
  private async forEachCluster(
    offset: number,
    length: number,
    visit: (cluster: number, at: number, count: number, whole: boolean) => Promise<void>,
  ): Promise<void> {
    const { clusterSize } = this.writes.p.geometry;
    const size = this.writes.p.virtualSize();
    let tasks: Promise<void>[] = [];
    for (let position = offset; position < offset + length; ) {
      const cluster = Math.floor(position / clusterSize);
      const clusterStart = cluster * clusterSize;
      const end = Math.min(offset + length, clusterStart + clusterSize);
      const wholeEnd = Math.min(clusterStart + clusterSize, size);
      tasks.push(visit(cluster, position - clusterStart, end - position, position === clusterStart && end >= wholeEnd));
      position = end;
      // A batch at a time: memory stays bounded whatever the range (zeroing 1 TiB of 64 KiB clusters at once was 16
      // million pending changes).
      if (tasks.length === CLUSTERS_AT_ONCE) {
        await Promise.all(tasks);
        tasks = [];
      }
    }
    await Promise.all(tasks);
  }
}
