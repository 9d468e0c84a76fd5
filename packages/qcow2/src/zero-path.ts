import { chainStatus } from '@q/backing';
import { ALL_SUBCLUSTERS, type L2Entry } from '@q/format';
import type { BlockDevice } from '@q/raw';
import { subclusterMask } from '@q/mapper';
import { changeEntryRange } from './entry-range-change.js';
import { entryAllocated, type NewEntryDecision, type WritePath } from './write-path.js';

/**
 * Clusters handled at once where zeroing goes a cluster at a time (v2 over a backing file, whose zeros are written):
 * one L2 table's worth with 64 KiB clusters.
 */
const CLUSTERS_AT_ONCE = 8192;

/**
 * Zero writes and discards, on top of the write path's entry changes. Whole clusters only change their L2 entries,
 * a batch of tables at a time (entry-range-change.ts); a partial cluster at either end of a zero write becomes a zero
 * cluster when the rest of it reads as zeros already, else its bytes are written (discards, which are advisory,
 * leave it alone).
 */
export class ZeroPath {
  private readonly writes: WritePath;

  constructor(writes: WritePath) {
    this.writes = writes;
  }

  /**
   * Makes the guest range read as zeros. Whole clusters only change their L2 entry (the zero flag; v2 has none, so
   * without a backing file its clusters are unallocated, and over one its zeros are written); partial ones as
   * zeroPart says. `unmap` also releases the clusters (QEMU's MAY_UNMAP).
   */
  async writeZeroes(offset: number, length: number, unmap: boolean): Promise<void> {
    const { header, backing } = this.writes.p;
    // v2 over a backing file gets its zeros written (zeroCluster): no entry change to batch.
    const whole = header.header.version === 2 && backing !== undefined ? undefined : this.wholeClusters(offset, length);
    if (whole === undefined) await this.zeroPieces(offset, length, unmap);
    else {
      const { clusterSize } = this.writes.p.geometry;
      const middleEnd = Math.min(offset + length, whole.end * clusterSize);
      await this.zeroPieces(offset, whole.first * clusterSize - offset, unmap);
      await changeEntryRange(this.writes, whole.first, whole.end, (entry) => this.zeroEntry(entry, unmap));
      await this.zeroPieces(middleEnd, offset + length - middleEnd, unmap);
    }
    if (this.writes.p.dataFileRaw) await this.writeRawZeros(offset, length);
  }

  /** writeZeroes of `[offset, offset + length)` a cluster at a time (the ends of a range, and v2 over a backing file). */
  private async zeroPieces(offset: number, length: number, unmap: boolean): Promise<void> {
    await this.forEachCluster(offset, length, (cluster, at, count, whole) => (whole ? this.zeroCluster(cluster, unmap) : this.zeroPart(cluster, at, count, unmap)));
  }

  /**
   * Zeroes `[at, at + count)` of `cluster`, less than all of it. Whole subclusters (extended L2) only change their
   * zero bits. A cluster (subcluster) covered in part becomes zero as a whole, by its entry, when it stores nothing
   * and the rest of it reads as zeros already, as QEMU does (observed: `write -z 4k 4k` on an empty image leaves
   * cluster 0 a zero cluster; on a v2 image without a backing file, nothing at all); otherwise its bytes are written.
   */
  private async zeroPart(cluster: number, at: number, count: number, unmap: boolean): Promise<void> {
    const { geometry, header, backing } = this.writes.p;
    // v2 over a backing file has nothing to zero with: QEMU writes the zeros, wherever the range lies.
    if (header.header.version === 2 && backing !== undefined) return this.writeZeroBytes(cluster, at, count);
    const grain = geometry.extendedL2 ? geometry.subclusterSize : geometry.clusterSize;
    const entry = await this.writes.entryOf(cluster);
    const spans: ZeroSpan[] = [];
    for (let first = Math.floor(at / grain) * grain; first < at + count; first += grain) {
      const from = Math.max(at, first);
      const to = Math.min(at + count, first + grain);
      const bits = geometry.extendedL2 ? subclusterMask(first / grain, first / grain) : ALL_SUBCLUSTERS;
      if (to - from === grain) spans.push({ bits, from, to, partial: undefined });
      else spans.push({ bits, from, to, partial: await this.restReadsZero(entry, cluster, first, first + grain, from, to) });
    }
    const flagged = spans.filter((span) => span.partial !== false);
    const lost = flagged.length === 0 ? [] : await this.flagZero(cluster, flagged, unmap);
    for (const span of [...spans.filter((span) => span.partial === false), ...lost]) await this.writeZeroBytes(cluster, span.from, span.to - span.from);
  }

  /**
   * How the part of a (sub)cluster `[spanStart, spanEnd)` outside `[from, to)` reads, when that is as zeros without
   * storing anything (the span holds no data, and is zero-flagged or shows a backing chain that maps zeros there,
   * QEMU's test too: stored zero bytes do not count): 'zero-flag' or 'below'; false otherwise.
   */
  private async restReadsZero(entry: L2Entry, cluster: number, spanStart: number, spanEnd: number, from: number, to: number): Promise<RestZero | false> {
    const { geometry, backing } = this.writes.p;
    const bits = geometry.extendedL2 ? subclusterMask(spanStart / geometry.subclusterSize, spanStart / geometry.subclusterSize) : ALL_SUBCLUSTERS;
    if (entry.compressed || (entry.allocMask & bits) !== 0) return false;
    if ((entry.zeroMask & bits) === bits) return 'zero-flag';
    const base = cluster * geometry.clusterSize;
    return (await mapsZeros(backing, base + spanStart, from - spanStart)) && (await mapsZeros(backing, base + to, spanEnd - to)) ? 'below' : false;
  }

  /**
   * Sets the zero bits of `spans` (the whole cluster's zero flag without extended L2) under the cluster's claim. A
   * span judged by its state before the claim that no longer qualifies (data written meanwhile) is returned, to be
   * written with zeros instead; a compressed cluster returns them all.
   */
  private async flagZero(cluster: number, spans: ZeroSpan[], unmap: boolean): Promise<ZeroSpan[]> {
    let lost: ZeroSpan[] = [];
    await this.writes.changeEntry(cluster, (entry) => {
      if (entry.compressed) {
        lost = spans;
        return undefined;
      }
      // Still storing nothing, and what made the rest read as zeros still holds (a zero flag stays one; what shows
      // from below does not change while the image is open).
      const stale = (span: ZeroSpan): boolean =>
        span.partial !== undefined && ((entry.allocMask & span.bits) !== 0 || (span.partial === 'zero-flag' && (entry.zeroMask & span.bits) !== span.bits));
      lost = spans.filter(stale);
      const kept = spans.filter((span) => !stale(span));
      if (kept.length === 0) return undefined;
      if (!this.writes.p.geometry.extendedL2) return this.zeroEntry(entry, unmap);
      const mask = kept.reduce((bits, span) => (bits | span.bits) >>> 0, 0);
      return { hostOffset: entry.hostOffset, copied: entry.copied, allocMask: (entry.allocMask & ~mask) >>> 0, zeroMask: (entry.zeroMask | mask) >>> 0, keepsReference: true };
    });
    return lost;
  }

  /**
   * The clusters `[first, end)` that `[offset, offset + length)` covers whole (the last cluster counts as whole when
   * the range reaches the end of the disk), or undefined when there are none.
   */
  private wholeClusters(offset: number, length: number): { first: number; end: number } | undefined {
    const { clusterSize } = this.writes.p.geometry;
    const size = this.writes.p.virtualSize();
    const first = Math.ceil(offset / clusterSize);
    const end = offset + length >= size ? Math.ceil(size / clusterSize) : Math.floor((offset + length) / clusterSize);
    return first < end ? { first, end } : undefined;
  }

  /**
   * Why zeroing `[offset, offset + length)` would write data rather than only change L2 entries, or undefined
   * when it would not (the test behind WriteZeroesOptions.fast): a raw external data file (its zeros are written),
   * a v2 image (no zero flag: QEMU refuses even where it would only unallocate), a partial cluster (subcluster with
   * extended L2) at either end that does not become a zero cluster as a whole (zeroPart's rule).
   */
  async whyNotFast(offset: number, length: number): Promise<string | undefined> {
    const { geometry, header, dataFileRaw } = this.writes.p;
    if (dataFileRaw) return 'the raw external data file gets its zeros written';
    if (header.header.version === 2) return 'a v2 image has no zero flag';
    const grain = geometry.extendedL2 ? geometry.subclusterSize : geometry.clusterSize;
    const end = Math.min(offset + length, this.writes.p.virtualSize());
    const ends = new Set([Math.floor(offset / grain) * grain, Math.floor((end - 1) / grain) * grain]);
    for (const spanStart of ends) {
      const from = Math.max(offset, spanStart);
      const to = Math.min(end, spanStart + grain);
      if (to - from === grain || (to === end && end === this.writes.p.virtualSize() && from === spanStart)) continue;
      const cluster = Math.floor(spanStart / geometry.clusterSize);
      const base = cluster * geometry.clusterSize;
      const rest = await this.restReadsZero(await this.writes.entryOf(cluster), cluster, spanStart - base, spanStart - base + grain, from - base, to - base);
      if (rest === false) return `the range is not aligned to ${grain} bytes where the rest of the cluster holds data`;
    }
    return undefined;
  }

  /**
   * Discards whole clusters (a partial cluster is left as it is: discard is advisory). The clusters are released;
   * on v3 they read as zeros afterwards. v2 has no zero flag: without a backing file a released cluster reads as
   * zeros too, with one it would show the backing file's old bytes instead, so QEMU leaves a v2 overlay as it is
   * and so do we.
   */
  async discard(offset: number, length: number): Promise<void> {
    const { geometry, header, backing } = this.writes.p;
    if (header.header.version === 2 && backing !== undefined) return;
    const whole = this.wholeClusters(offset, length);
    if (whole !== undefined) {
      await changeEntryRange(this.writes, whole.first, whole.end, (entry) => {
        if (!entryAllocated(entry) && backing === undefined) return undefined;
        if (header.header.version === 2) return { hostOffset: 0, copied: false };
        return geometry.extendedL2 ? { hostOffset: 0, copied: false, allocMask: 0, zeroMask: ALL_SUBCLUSTERS } : { hostOffset: 0, copied: false, zero: true };
      });
    }
    if (this.writes.p.dataFileRaw) await this.writeRawZeros(offset, length);
  }

  private async zeroCluster(cluster: number, unmap: boolean): Promise<void> {
    const { geometry, header, backing } = this.writes.p;
    // v2 has no zero flag: over a backing file QEMU writes the zeros (even past the backing file's end).
    if (header.header.version === 2 && backing !== undefined) {
      return this.writeZeroBytes(cluster, 0, geometry.clusterSize);
    }
    await this.writes.changeEntry(cluster, (entry) => this.zeroEntry(entry, unmap));
  }

  /**
   * What a whole cluster's entry becomes when it is zeroed. v3: the zero flag (extended L2: every zero bit), keeping
   * its cluster unless `unmap` (QEMU's preallocated zero cluster). v2, where nothing shows through from below:
   * unallocated.
   */
  private zeroEntry(entry: L2Entry, unmap: boolean): NewEntryDecision | undefined {
    const { geometry, header } = this.writes.p;
    if (header.header.version === 2) return entryAllocated(entry) ? { hostOffset: 0, copied: false } : undefined;
    // A cluster shared with a snapshot keeps its reference too (not COPIED): QEMU zeroes it that way (observed).
    const keep = !unmap && !entry.compressed && entry.hostOffset !== 0;
    const hostOffset = keep ? entry.hostOffset : 0;
    const copied = keep && entry.copied;
    return geometry.extendedL2 ? { hostOffset, copied, allocMask: 0, zeroMask: ALL_SUBCLUSTERS } : { hostOffset, copied, zero: true };
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

/** How the rest of a partly zeroed span reads as zeros: by its own zero flag, or by what shows from below. */
type RestZero = 'zero-flag' | 'below';

/** A (sub)cluster of a partial zero write: its bits, the bytes `[from, to)` zeroed in it, and how (RestZero). */
interface ZeroSpan {
  bits: number;
  from: number;
  to: number;
  /** undefined: the span is covered whole; false: its bytes must be written; else why its entry may say zero. */
  partial: RestZero | false | undefined;
}

/**
 * Whether `[offset, offset + length)` of `device` (a backing chain) maps as zeros: nothing there is stored data
 * (QEMU's block-status test: stored zero bytes count as data). Past the end of the chain, or without one, yes.
 */
async function mapsZeros(device: BlockDevice | undefined, offset: number, length: number): Promise<boolean> {
  if (device === undefined || length <= 0) return true;
  return (await chainStatus(device, offset, length)).every((extent) => !extent.data);
}
