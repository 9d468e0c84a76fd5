import type { CheckCounts, CheckLog, RepairFlags } from './check-result.js';
import type { ExpectedRefcounts } from './expected-refcounts.js';
import { getRefcountExact } from '@q/format';
import { UnalignedRefcountBlock, type OnDiskRefcounts } from './on-disk-refcounts.js';

export interface CompareResult {
  /** The last cluster with a refcount or a reference (0 when there is none). */
  highestCluster: number;
  /** A used cluster has refcount 0: its refcount block may be missing, so only a rebuild can repair it. */
  rebuild: boolean;
}

/**
 * Compares the recorded refcount of every cluster up to `expected.size` with the references found. Higher is a
 * leak, lower a corruption; each allowed repair writes the found value. A used cluster at refcount 0 is never
 * repaired here (it may have no refcount block), it asks for a rebuild. Lines read as QEMU's.
 */
export async function compareRefcounts(
  onDisk: OnDiskRefcounts,
  expected: ExpectedRefcounts,
  counts: CheckCounts,
  fix: RepairFlags,
  log: CheckLog,
): Promise<CompareResult> {
  const result: CompareResult = { highestCluster: 0, rebuild: false };
  const size = expected.size;
  const perBlock = onDisk.blockEntries;
  const order = expected.refcountOrder;
  const reportMismatch = async (cluster: number, recorded: number | bigint, found: number): Promise<void> => {
    let fixed: 'leaksFixed' | 'corruptionsFixed' | undefined;
    if (recorded === 0) result.rebuild = true;
    else if (recorded > found && fix.leaks) fixed = 'leaksFixed';
    else if (recorded < found && fix.errors) fixed = 'corruptionsFixed';
    const verb = fixed !== undefined ? 'Repairing' : recorded < found ? 'ERROR' : 'Leaked';
    log(`${verb} cluster ${cluster} refcount=${recorded} reference=${found}`);
    if (fixed !== undefined) {
      await onDisk.set(cluster, found);
      counts[fixed]++;
    } else if (recorded < found) counts.corruptions++;
    else counts.leaks++;
  };
  for (const index of blocksToVisit(onDisk, expected, size)) {
    const start = index * perBlock;
    const end = Math.min(size, start + perBlock);
    const block = await onDisk.block(index);
    if (block instanceof UnalignedRefcountBlock) {
      // QEMU cannot read any refcount of this range and says so once per cluster.
      for (let cluster = start; cluster < end; cluster++) {
        log(`Can't get refcount for cluster ${cluster}: Input/output error`);
        counts.checkErrors++;
      }
      continue;
    }
    // Without a block every recorded refcount is 0: only clusters with references need a look.
    const runs = block === undefined ? [...expected.populatedRuns(start, end)] : [[start, end] as [number, number]];
    const blockView = block === undefined ? undefined : new DataView(block.buffer, block.byteOffset, block.byteLength);
    for (const [runStart, runEnd] of runs) {
      let cluster = runStart;
      while (cluster < runEnd) {
        const chunk = expected.chunkAt(cluster);
        const stop = Math.min(runEnd, chunk.end);
        for (; cluster < stop; cluster++) {
          const recorded = block === undefined ? 0 : getRefcountExact(block, cluster - start, order, blockView);
          const found = chunk.counts === undefined ? 0 : chunk.counts[cluster - chunk.first]!;
          if (recorded === found) {
            if (found !== 0) result.highestCluster = cluster;
            continue;
          }
          // (A recorded count past 2^53 is a bigint: unequal to and larger than any count found.)
          result.highestCluster = cluster;
          await reportMismatch(cluster, recorded, found);
        }
      }
    }
  }
  return result;
}

/**
 * The refcount blocks whose range holds something to compare: those the table names, and those covering
 * clusters with references. Empty stretches (a sparse range past the end of the file) are skipped whole.
 */
function blocksToVisit(onDisk: OnDiskRefcounts, expected: ExpectedRefcounts, size: number): number[] {
  const perBlock = onDisk.blockEntries;
  const blocks = Math.ceil(size / perBlock);
  const visit = new Set<number>();
  const named = Math.min(blocks, onDisk.offsets.length);
  for (let i = 0; i < named; i++) if (onDisk.offsets[i] !== 0) visit.add(i);
  for (const [start, end] of expected.populatedRuns(0, size)) {
    for (let index = Math.floor(start / perBlock); index <= Math.floor((end - 1) / perBlock); index++) visit.add(index);
  }
  return [...visit].sort((a, b) => a - b);
}
