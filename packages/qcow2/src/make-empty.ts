import type { TableCache } from '@q/cache';
import { tableReferences, type ClusterMapper } from '@q/mapper';
import type { ResizeParts } from './l1-growth.js';

/** What emptying needs: the resize parts (file, L1, refcounts, regions) and the table cache and mapper. */
export interface MakeEmptyParts extends ResizeParts {
  l2Cache: TableCache;
  mapper: ClusterMapper;
}

/** L1 entries dropped per synced step: bounds the references held in memory between the two syncs of a step. */
const TABLES_PER_STEP = 64;

/**
 * Unmaps every guest cluster of the active disk by dropping whole L2 tables from the L1 table, so the disk reads
 * as its backing file (or zeros): what `qemu-img commit` leaves in the overlay it committed. Runs under the
 * metadata lock, after a flush (no dirty L2 table in the cache).
 *
 * The order is DESIGN.md's freeing rule, in steps of a few tables: the L1 entries are cleared and synced first,
 * then the tables and every cluster they reference lose one reference (a cluster's count is the number of L1
 * tables reaching it, so a table shared with a snapshot keeps what the snapshot still reaches). A crash can only
 * leak. QEMU empties in place instead (a fresh layout written under the dirty bit, or its entries discarded one by
 * one when the image has snapshots); dropping the tables lets close cut the file back to its header, refcount
 * structures and L1 table, which for an overlay created by qemu-img is the same bytes QEMU leaves.
 *
 * Returns how many L2 tables were dropped.
 */
export async function makeEmpty(parts: MakeEmptyParts): Promise<number> {
  const { file, geometry, l1, l2Cache, mapper, refcounts, metadata } = parts;
  let dropped = 0;
  for (let first = 0; first < l1.entries; first += TABLES_PER_STEP) {
    const step: Array<{ index: number; offset: number }> = [];
    for (let index = first; index < Math.min(l1.entries, first + TABLES_PER_STEP); index++) {
      const offset = l1.l2Offset(index);
      if (offset !== 0) step.push({ index, offset });
    }
    if (step.length === 0) continue;
    // The tables' references are read before the L1 entries go (a table shared with a snapshot stays readable
    // after, one only the active L1 reached is freed below).
    const tables = await Promise.all(step.map(({ index, offset }) => l2Cache.peek(offset) ?? mapper.loadL2(offset, index)));
    for (const { index } of step) await l1.set(index, 0, false, file);
    await file.flush();
    for (const [i, { offset }] of step.entries()) {
      l2Cache.drop(offset);
      metadata.remove(offset, geometry.clusterSize);
      const table = tables[i]!;
      const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
      await refcounts.adjustEach(tableReferences(view, geometry, (at, index) => mapper.decodeEntry(at, index)), -1);
      await refcounts.adjust(offset / geometry.clusterSize, -1);
    }
    dropped += step.length;
  }
  await parts.syncRefcounts();
  return dropped;
}
