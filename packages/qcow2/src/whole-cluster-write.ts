import { ALL_SUBCLUSTERS, type L2Entry } from '@q/format';
import type { L2Writer, WritableTable } from '@q/mapper';
import { newHostClusters } from './host-allocation.js';
import type { WritePathParts } from './write-path.js';

/** What a run of whole-cluster writes needs from the write path: its parts, claims, releases and overlap check. */
export interface WholeClusterWriter {
  readonly p: WritePathParts;
  claim(cluster: number): Promise<() => void>;
  /** `claim` without waiting when the cluster is free (see KeyedClaims.tryClaim). */
  tryClaim(cluster: number): (() => void) | undefined;
  /** Queues the references `entry` held for release at the next flush. */
  release(entry: L2Entry): void;
  /** Throws (E_CORRUPT) when `[host, host + length)` would land on metadata. */
  checkOverlap(host: number, length: number): void;
}

/**
 * Writes whole guest clusters `[first, first + n)` with `bytes` (n clusters). Nothing of what they held survives,
 * so no copy-on-write read: clusters this image owns alone (COPIED) are rewritten where they are, every other one
 * (unallocated, zero, compressed, in the backing file, shared with a snapshot) gets a new host cluster, all of
 * them from one allocator run where the space is free, and one data write goes out per contiguous host run.
 *
 * The ordering is the single-cluster path's (WritePath.allocatingWrite), for the whole run at once:
 * - each cluster is claimed, in ascending order: two overlapping runs never wait on each other in a cycle, and
 *   every other path holds one claim at a time; a concurrent write to one of them waits and then finds the new
 *   entry;
 * - new clusters are counted first (in the refcount cache, which reaches the file, synced unless refcounts are
 *   lazy, before any L2 table is written back: syncRefcounts runs before every L2 write-back and at flush);
 * - the data is written, and only once it has landed are the L2 entries changed, so a reader never follows an
 *   entry to a cluster whose bytes are not there yet;
 * - clusters the entries named before (shared, compressed) are released at the next flush, once the tables
 *   dropping them are durable.
 */
export async function writeWholeClusters(writer: WholeClusterWriter, first: number, bytes: Uint8Array): Promise<void> {
  const { geometry, lock, l2Writer, dataFile } = writer.p;
  const { clusterSize, l2Entries } = geometry;
  const count = bytes.length / clusterSize;
  const releases: Array<() => void> = [];
  try {
    for (let i = 0; i < count; i++) releases.push(writer.tryClaim(first + i) ?? (await writer.claim(first + i)));
    // Under the lock a table made writable stays so: each table is asked for once, not once per cluster.
    const entries = await lock.run(async () => {
      const found: L2Entry[] = [];
      const tables = new TableWalk(l2Writer, l2Entries);
      for (let cluster = first; cluster < first + count; cluster++) found.push(l2Writer.entry(await tables.of(cluster), cluster % l2Entries));
      return found;
    });
    const reuse = entries.map((entry) => !entry.compressed && entry.copied && (entry.hostOffset !== 0 || (geometry.externalDataFile && entry.allocMask !== 0)));
    const hosts = await lock.run(() => newHostClusters(writer.p, first, entries, reuse));
    const runs: Array<[start: number, end: number]> = [];
    for (let start = 0; start < count; ) {
      let end = start + 1;
      while (end < count && hosts[end] === hosts[end - 1]! + clusterSize) end++;
      writer.checkOverlap(hosts[start]!, (end - start) * clusterSize);
      runs.push([start, end]);
      start = end;
    }
    await Promise.all(runs.map(([start, end]) => dataFile.write(bytes.subarray(start * clusterSize, end * clusterSize), hosts[start]!)));
    await lock.run(async () => {
      const tables = new TableWalk(l2Writer, l2Entries);
      for (let i = 0; i < count; i++) {
        const cluster = first + i;
        const walked = tables.of(cluster);
        const table = walked instanceof Promise ? await walked : walked;
        // Every subcluster now holds data: with extended L2 the zero bits of the old entry go.
        l2Writer.setEntry(table, cluster % l2Entries, { hostOffset: hosts[i]!, copied: true, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 });
        if (!reuse[i]) writer.release(entries[i]!);
      }
    });
  } finally {
    for (const release of releases) release();
  }
}

/**
 * The writable L2 table of each cluster of an ascending walk, asked of the writer once per table: the cached
 * table comes back without an await, so nothing else runs (no reader loading a table, which could evict this one)
 * between the clusters of one table; only a new table is waited for, and fetched afresh.
 */
class TableWalk {
  private index = -1;
  private table: WritableTable | undefined;

  constructor(
    private readonly l2Writer: L2Writer,
    private readonly l2Entries: number,
  ) {}

  of(cluster: number): WritableTable | Promise<WritableTable> {
    const index = Math.floor(cluster / this.l2Entries);
    if (index === this.index && this.table !== undefined) return this.table;
    return this.l2Writer.writableTable(index).then((table) => {
      this.table = table;
      this.index = index;
      return table;
    });
  }
}
