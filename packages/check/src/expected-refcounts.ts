import { DiskError } from '@q/raw';
import { maxRefcount, setRefcount } from '@q/format';

/** Clusters per chunk: small enough that a stray reference far past the end of the file costs little. */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
/**
 * Chunks allowed beyond those the file itself needs: references past the end of the file are corruption, but a
 * hostile L2 table full of them must not make the check allocate without bound (4096 chunks = 16 Mi clusters).
 */
const EXTRA_CHUNKS = 4096;

type Counts = Uint8Array | Uint16Array | Uint32Array;
const STORE_MAX = 0xffff_ffff;

/**
 * The reference count every host cluster should have, as the metadata walk finds it: one counter per host
 * cluster, stored in chunks that exist only where something is referenced, so a huge sparse image with a small
 * file costs little, and references past the end of the file cost a chunk each (with a cap).
 *
 * `size` follows QEMU's in-memory array: it starts at the number of clusters in the file and grows to cover the
 * highest cluster referenced, which matters because `qemu-img check` compares refcounts up to that point.
 */
export class ExpectedRefcounts {
  readonly refcountOrder: number;
  /** The largest count an on-disk entry can hold (the counter saturates there, as QEMU's does). */
  readonly max: number;
  private readonly chunks = new Map<number, Counts>();
  /** Chunk keys in ascending order, rebuilt after a chunk is added. */
  private sortedKeys: number[] | undefined = [];
  private readonly chunkLimit: number;
  private clusters: number;

  constructor(fileClusters: number, refcountOrder: number) {
    this.refcountOrder = refcountOrder;
    this.max = maxRefcount(refcountOrder);
    this.clusters = fileClusters;
    this.chunkLimit = Math.ceil(fileClusters / CHUNK) + EXTRA_CHUNKS;
  }

  /** Clusters covered: the file's, or more when something references clusters past its end. */
  get size(): number {
    return this.clusters;
  }

  /** Extends `size` to at least `clusters` (no memory is used until a count is set). */
  grow(clusters: number): void {
    if (clusters > this.clusters) this.clusters = clusters;
  }

  /**
   * The counts of the chunk holding `cluster`, for loops over many clusters: `counts[c - first]` is the count of
   * cluster c for first <= c < end (no counts: all zero).
   */
  chunkAt(cluster: number): { counts: ArrayLike<number> | undefined; first: number; end: number } {
    const key = Math.floor(cluster / CHUNK);
    return { counts: this.chunks.get(key), first: key * CHUNK, end: (key + 1) * CHUNK };
  }

  get(cluster: number): number {
    return this.chunks.get(Math.floor(cluster / CHUNK))?.[cluster % CHUNK] ?? 0;
  }

  set(cluster: number, value: number): void {
    if (value > Math.min(this.max, STORE_MAX)) throw new DiskError('E_TOO_LARGE', `reference count ${value} of cluster ${cluster} is too large`);
    this.grow(cluster + 1);
    const counts = value === 0 ? this.chunks.get(Math.floor(cluster / CHUNK)) : this.chunkFor(cluster);
    if (counts !== undefined) counts[cluster % CHUNK] = value;
  }

  /** Adds one reference; returns false (and changes nothing) when the count is already at the width's maximum. */
  increment(cluster: number): boolean {
    this.grow(cluster + 1);
    const counts = this.chunkFor(cluster);
    const at = cluster % CHUNK;
    const value = counts[at]!;
    if (value >= this.max) return false;
    // Only 64-bit refcounts can go past the 32-bit counters, and only after four billion references to one cluster.
    if (value >= STORE_MAX) throw new DiskError('E_TOO_LARGE', `more than ${STORE_MAX} references to cluster ${cluster}`);
    counts[at] = value + 1;
    return true;
  }

  /**
   * The clusters in [start, end) that may hold a non-zero count, as runs: lets callers skip the empty stretches
   * of a sparse range without visiting every cluster.
   */
  *populatedRuns(start: number, end: number): Generator<[start: number, end: number]> {
    if (end <= start) return;
    const first = Math.floor(start / CHUNK);
    const last = Math.floor((end - 1) / CHUNK);
    this.sortedKeys ??= [...this.chunks.keys()].sort((a, b) => a - b);
    const keys = this.sortedKeys;
    // Binary search for the first chunk at or after `first`.
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (keys[mid]! < first) low = mid + 1;
      else high = mid;
    }
    for (let i = low; i < keys.length && keys[i]! <= last; i++) {
      const key = keys[i]!;
      yield [Math.max(start, key * CHUNK), Math.min(end, (key + 1) * CHUNK)];
    }
  }

  /**
   * The first run of `count` clusters at zero at or after `from` (the run may reach past `size`, which then grows):
   * first fit, as QEMU allocates while it rebuilds refcounts, so the new structures land where QEMU puts them.
   */
  findFree(from: number, count: number): number {
    let runStart = from;
    let cluster = from;
    while (cluster - runStart < count) {
      if (cluster >= this.clusters) break;
      const counts = this.chunks.get(Math.floor(cluster / CHUNK));
      if (counts === undefined) {
        // A missing chunk is all zeros: the run extends over it at once.
        cluster = Math.min((Math.floor(cluster / CHUNK) + 1) * CHUNK, this.clusters, runStart + count);
        continue;
      }
      if (counts[cluster % CHUNK] !== 0) runStart = cluster + 1;
      cluster++;
    }
    return runStart;
  }

  /** The counts of clusters [first, first + entries) encoded as an on-disk refcount block of `blockBytes`. */
  encodeBlock(first: number, entries: number, blockBytes: number): Uint8Array {
    const block = new Uint8Array(blockBytes);
    for (const [start, end] of this.populatedRuns(first, first + entries)) {
      for (let cluster = start; cluster < end; cluster++) {
        const value = this.get(cluster);
        if (value !== 0) setRefcount(block, cluster - first, this.refcountOrder, value);
      }
    }
    return block;
  }

  private chunkFor(cluster: number): Counts {
    const key = Math.floor(cluster / CHUNK);
    let counts = this.chunks.get(key);
    if (counts === undefined) {
      if (this.chunks.size >= this.chunkLimit) {
        throw new DiskError('E_TOO_LARGE', `too many references to clusters past the end of the file (cluster ${cluster})`);
      }
      counts = this.refcountOrder <= 3 ? new Uint8Array(CHUNK) : this.refcountOrder === 4 ? new Uint16Array(CHUNK) : new Uint32Array(CHUNK);
      this.chunks.set(key, counts);
      this.sortedKeys = undefined;
    }
    return counts;
  }
}
