import { DiskError } from '@q/raw';
import { encodeHeaderFields, INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from '@q/format';
import { emptyCounts, type CheckCounts, type CheckLog, type RepairFlags } from './check-result.js';
import { compareRefcounts } from './compare-refcounts.js';
import { checkCopiedFlags } from './copied-flags.js';
import { unalignedBlockSignal, type CorruptionState } from './corruption-signal.js';
import { ExpectedRefcounts } from './expected-refcounts.js';
import type { ImageLayout } from './image-layout.js';
import { OnDiskRefcounts } from './on-disk-refcounts.js';
import { rebuildRefcounts } from './rebuild-refcounts.js';
import { readSnapshotTable } from './snapshot-table-check.js';
import { rewriteSnapshotTable } from './snapshot-table-rewrite.js';
import { walkAll } from './walk-references.js';
import type { WalkContext } from './walk-context.js';

/** QEMU counts clusters in an int; a file with more is refused ("File too large"). */
const MAX_FILE_CLUSTERS = 0x7fff_ffff;

/**
 * One check of an image, optionally repairing: what QEMU's qcow2 driver does for one `bdrv_check` call. The
 * steps and their order follow QEMU's, because the order decides what is counted as fixed and what is still
 * reported: walk, compare, then either rebuild (refcounts unusable, `-r all`) or repair in place, then COPIED
 * flags, then clear the dirty and corrupt bits when nothing is left wrong.
 *
 * Throws a DiskError when the check cannot complete (QEMU's "Check failed: ..."): an I/O error, a refcount
 * structure that needs a rebuild when only leaks may be repaired, a bitmap table QEMU cannot load.
 */
export async function checkPass(
  layout: ImageLayout,
  fix: RepairFlags,
  log: CheckLog,
  corruption: CorruptionState = { signaled: false },
): Promise<CheckCounts> {
  const { file, header, geometry } = layout;
  const onUnaligned = unalignedBlockSignal(layout, corruption, fix.leaks || fix.errors, log);
  const counts = emptyCounts();
  const clusterSize = geometry.clusterSize;
  const fileClusters = Math.ceil(layout.fileSize / clusterSize);
  if (fileClusters > MAX_FILE_CLUSTERS) {
    throw new DiskError('E_TOO_LARGE', 'File too large', { file: file.name });
  }
  // The snapshot table is read (and judged) first; its repair, a rewrite, waits until the refcounts are right.
  const snapshotCounts = emptyCounts();
  const snapshots = await readSnapshotTable(layout, snapshotCounts, fix, log);
  // QEMU counts whole sectors of the virtual disk (a size that is not a multiple of 512 is rounded down).
  counts.totalClusters = Math.ceil((Math.floor(header.size / 512) * 512) / clusterSize);
  let onDisk = await OnDiskRefcounts.load(file, header, geometry, onUnaligned);
  const context: WalkContext = {
    layout,
    snapshots,
    fileSize: layout.fileSize,
    expected: new ExpectedRefcounts(fileClusters, header.refcountOrder),
    counts,
    log,
    repair: fix,
    rebuild: false,
  };
  await walkAll(context, onDisk);
  const beforeCompare = { ...counts };
  let compared = await compareRefcounts(onDisk, context.expected, counts, { leaks: false, errors: false }, log);
  let rebuild = context.rebuild || compared.rebuild;
  let result = counts;
  if (rebuild && fix.errors) {
    const before = { ...counts };
    log('Rebuilding refcount structure');
    protectOldBlocks(onDisk, context.expected, fileClusters, clusterSize);
    const rebuilt = await rebuildRefcounts(file, header, geometry, context.expected);
    header.refcountTableOffset = rebuilt.tableOffset;
    header.refcountTableClusters = rebuilt.tableClusters;
    onDisk = await OnDiskRefcounts.load(file, header, geometry, onUnaligned);
    // Count again from scratch against the new structures; the old ones now show up as leaks.
    const size = context.expected.size;
    const again: WalkContext = {
      ...context,
      fileSize: await file.size(),
      expected: new ExpectedRefcounts(fileClusters, header.refcountOrder),
      repair: { leaks: false, errors: false },
      rebuild: false,
    };
    again.expected.grow(size);
    counts.corruptions = 0;
    counts.leaks = 0;
    await walkAll(again, onDisk);
    let freshLeaks = 0;
    if (fix.leaks) {
      const scratch = emptyCounts();
      compared = await compareRefcounts(onDisk, again.expected, scratch, { leaks: true, errors: false }, log);
      if (again.rebuild || compared.rebuild) log('ERROR rebuilt refcount structure is still broken');
      // Leaks the rebuild itself left (the old structures) are repaired here and not reported as found.
      freshLeaks = scratch.leaks;
    }
    if (counts.corruptions < before.corruptions) counts.corruptionsFixed += before.corruptions - counts.corruptions;
    if (counts.leaks < before.leaks) counts.leaksFixed += before.leaks - counts.leaks;
    counts.leaks += freshLeaks;
  } else if (fix.leaks || fix.errors) {
    if (rebuild) {
      log('ERROR need to rebuild refcount structures');
      counts.checkErrors++;
      throw new DiskError('E_CORRUPT', 'Input/output error', { file: file.name });
    }
    if (counts.leaks > 0 || counts.corruptions > 0) {
      // Compare again, this time repairing; the counts are those from before the first comparison.
      result = Object.assign(counts, beforeCompare);
      compared = await compareRefcounts(onDisk, context.expected, result, fix, log);
    }
  }
  await checkCopiedFlags(layout, onDisk, result, fix, log);
  result.imageEndOffset = (compared.highestCluster + 1) * clusterSize;
  if (snapshotCounts.corruptions > 0 && fix.errors) {
    await rewriteSnapshotTable(layout, onDisk, snapshots, log);
    snapshotCounts.corruptionsFixed += snapshotCounts.corruptions;
    snapshotCounts.corruptions = 0;
  }
  result.corruptions += snapshotCounts.corruptions;
  result.corruptionsFixed += snapshotCounts.corruptionsFixed;
  result.checkErrors += snapshotCounts.checkErrors;
  if ((fix.leaks || fix.errors) && result.checkErrors === 0 && result.corruptions === 0) await markClean(layout);
  await file.flush();
  return result;
}

/**
 * Marks the clusters the old refcount table names but the walk did not count (entries it rejected) as used, so
 * the rebuild places nothing there: until the header switches, the old table still points at them. QEMU would
 * fail its overlap check here instead; the clusters become leaks that the following comparison frees.
 */
function protectOldBlocks(onDisk: OnDiskRefcounts, expected: ExpectedRefcounts, fileClusters: number, clusterSize: number): void {
  for (const offset of onDisk.offsets) {
    if (offset === 0 || !Number.isFinite(offset)) continue;
    const first = Math.floor(offset / clusterSize);
    const last = Math.floor((offset + clusterSize - 1) / clusterSize);
    for (let cluster = first; cluster <= last && cluster < fileClusters; cluster++) {
      if (expected.get(cluster) === 0) expected.set(cluster, 1);
    }
  }
}

/** Clears the dirty and corrupt bits (v3) once a repair left nothing wrong, as QEMU does after `-r`. */
async function markClean(layout: ImageLayout): Promise<void> {
  const { header, file } = layout;
  if (header.version < 3) return;
  const cleared = header.incompatibleFeatures & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
  if (cleared === header.incompatibleFeatures) return;
  await file.flush();
  const patch = encodeHeaderFields({ ...header, incompatibleFeatures: cleared }, ['incompatibleFeatures']);
  await file.write(patch.bytes, patch.offset);
  await file.flush();
  header.incompatibleFeatures = cleared;
}
