import type { RefcountListener } from '@q/refcount';
import type { BlockFile } from '@q/raw';
import { ClusterRunSet } from './cluster-run-set.js';

/**
 * Gives the space of freed clusters back to the file system (punched holes), as QEMU does after discards and
 * snapshot deletion, so `du` of an image drops when its guest trims.
 *
 * The ordering rule: a hole may only be punched where no reference a crash could leave on disk still points. A
 * refcount reaches 0 only after the L2/L1 entry, snapshot table or header that named the cluster was rewritten and
 * synced (the write path's contract), so at that moment nothing durable names it. But the cluster is free in
 * memory from then on and the allocator hands out freed clusters first: new data or a new table may land there
 * before the hole is punched, and a late punch would destroy it. So:
 * - every cluster whose refcount drops to 0 joins the queue (the refcount store's listener);
 * - a cluster that is counted again leaves it at once, before its new contents are written;
 * - what remains is punched at flush, under the metadata lock (nothing can be allocated meanwhile), after every
 *   table cache was written and the file synced, and at close; neighbours go in one call, since on ext4 a punch
 *   costs about the same for one cluster as for a thousand.
 * A punch is not synced: until the next flush a crash may or may not keep it, and either way the cluster is free.
 */
export class DeallocationQueue implements RefcountListener {
  private readonly file: BlockFile;
  private readonly clusterSize: number;
  private readonly queued = new ClusterRunSet();
  /** The file can punch holes (and has not said otherwise since). */
  private enabled: boolean;

  constructor(file: BlockFile, clusterSize: number) {
    this.file = file;
    this.clusterSize = clusterSize;
    this.enabled = file.capabilities.deallocate === true && file.deallocate !== undefined;
  }

  /** Clusters waiting for their hole. */
  get pending(): number {
    return this.queued.size;
  }

  freed(cluster: number): void {
    if (this.enabled) this.queued.add(cluster);
  }

  claimed(cluster: number): void {
    this.queued.delete(cluster);
  }

  /**
   * Punches every queued cluster, neighbours together. Only under the metadata lock, once the tables that dropped
   * these clusters are durable (see the class comment). Returns how many clusters were given back.
   *
   * `cutTail`, when given, cuts the file after its last cluster in use and returns the first cluster it cut (or
   * past the file's end): queued clusters from there on need no hole. One truncate gives back a freed tail (an
   * overlay emptied by commit, a discarded end of disk) where punching it cost as much again (ext4: 50 ms for
   * 256 MiB), and the file ends where close would cut it anyway.
   */
  async release(cutTail?: () => Promise<number>): Promise<number> {
    if (this.queued.size === 0) return 0;
    let runs = this.queued.runs();
    this.queued.clear();
    let released = 0;
    if (cutTail !== undefined) {
      const cut = await cutTail();
      const below: Array<[number, number]> = [];
      for (const [first, count] of runs) {
        if (first + count <= cut) below.push([first, count]);
        else {
          released += first + count - Math.max(first, cut);
          if (first < cut) below.push([first, cut - first]);
        }
      }
      runs = below;
    }
    for (const [first, count] of runs) {
      try {
        if (!(await this.file.deallocate!(first * this.clusterSize, count * this.clusterSize))) {
          // The file system cannot punch holes after all: stop asking.
          this.enabled = false;
          return released;
        }
        released += count;
      } catch {
        // Giving space back is advisory (as a discard is): a failed punch leaves the bytes of a free cluster in
        // place, which nothing reads, and must not fail the flush whose data is already durable.
      }
    }
    return released;
  }
}
