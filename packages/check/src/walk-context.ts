import type { CheckCounts, CheckLog, RepairFlags } from './check-result.js';
import type { ExpectedRefcounts } from './expected-refcounts.js';
import type { ImageLayout } from './image-layout.js';
import type { HostOffset } from './host-offset.js';
import type { SnapshotTable } from './snapshot-table-check.js';

/** State shared by the steps of one metadata walk. */
export interface WalkContext {
  layout: ImageLayout;
  snapshots: SnapshotTable;
  /** The file's current length (repairs may grow it): references reaching past it are not counted. */
  fileSize: number;
  expected: ExpectedRefcounts;
  counts: CheckCounts;
  log: CheckLog;
  repair: RepairFlags;
  /**
   * Set when the refcount structures themselves are unusable (a refcount of 0 on a used cluster, a bad refcount
   * table entry): only a rebuild repairs that, as in QEMU.
   */
  rebuild: boolean;
}

/**
 * Counts one reference to every cluster that [offset, offset + size) touches. At the width's maximum the count
 * stays and a corruption is recorded, with QEMU's two-line advice.
 */
export function addReferences(context: WalkContext, offset: HostOffset, size: number): void {
  if (size <= 0) return;
  const clusterSize = context.layout.geometry.clusterSize;
  // The last cluster of a file may be partly written (a compressed cluster at the very end), so up to one cluster
  // past the end is fine; a region reaching further points at nothing and is corruption, not a reference.
  // (An offset past 2^53 is a bigint here, and lies past the end of any file.)
  if (typeof offset === 'bigint' || offset + size - context.fileSize >= clusterSize) {
    context.log(
      `ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x${size.toString(16)}`,
    );
    context.counts.corruptions++;
    return;
  }
  const first = Math.floor(offset / clusterSize);
  const last = Math.floor((offset + size - 1) / clusterSize);
  for (let cluster = first; cluster <= last; cluster++) {
    if (!context.expected.increment(cluster)) {
      context.log(`ERROR: overflow cluster offset=0x${(cluster * clusterSize).toString(16)}`);
      context.log(
        'Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing',
      );
      context.counts.corruptions++;
    }
  }
}
