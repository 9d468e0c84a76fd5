import { MAX_L1_TABLE_BYTES } from '@q/format';
import { walkBitmaps } from './bitmap-walk.js';
import { emptyCounts, repairFlags, type CheckCounts, type CheckLog, type RepairMode } from './check-result.js';
import { ExpectedRefcounts } from './expected-refcounts.js';
import type { ImageLayout } from './image-layout.js';
import { OnDiskRefcounts } from './on-disk-refcounts.js';
import { altHex } from './printf.js';
import { offsetRemainder } from './host-offset.js';
import { cString, readSnapshotTable } from './snapshot-table-check.js';
import { checkRefcountBlocks } from './refcount-block-check.js';
import { walkL1 } from './table-walk.js';
import { addReferences, type WalkContext } from './walk-context.js';

/**
 * Visits every piece of metadata in the order QEMU's check does (so messages come out in the same order):
 * header, active L1 and its L2 tables, each snapshot's L1 and L2 tables, the snapshot table, the refcount table,
 * bitmaps, and finally the refcount blocks.
 */
export async function walkAll(context: WalkContext, onDisk: OnDiskRefcounts): Promise<void> {
  const { header, geometry } = context.layout;
  const snapshots = context.snapshots.entries;
  const clusterSize = geometry.clusterSize;
  addReferences(context, 0, clusterSize);
  await walkL1(context, header.l1TableOffset, header.l1Size, { active: true });
  if (geometry.externalDataFile && snapshots.length > 0) {
    // Snapshots cannot share clusters of a data file (it has no refcounts), so QEMU forbids them there.
    context.log(`ERROR ${snapshots.length} snapshots in image with data file`);
    context.counts.corruptions++;
  }
  for (const snapshot of snapshots) {
    const label = `${cString(snapshot.idBytes)} (${cString(snapshot.nameBytes)})`;
    if (offsetRemainder(snapshot.l1TableOffset, clusterSize) !== 0) {
      context.log(`ERROR snapshot ${label} l1_offset=${altHex(snapshot.l1TableOffset)}: L1 table is not cluster aligned; snapshot table entry corrupted`);
      context.counts.corruptions++;
      continue;
    }
    if (snapshot.l1Size > MAX_L1_TABLE_BYTES / 8) {
      context.log(`ERROR snapshot ${label} l1_size=${altHex(snapshot.l1Size)}: L1 table is too large; snapshot table entry corrupted`);
      context.counts.corruptions++;
      continue;
    }
    await walkL1(context, snapshot.l1TableOffset, snapshot.l1Size, { active: false });
  }
  addReferences(context, context.snapshots.offset, context.snapshots.bytes);
  addReferences(context, header.refcountTableOffset, header.refcountTableClusters * clusterSize);
  await walkBitmaps(context);
  await checkRefcountBlocks(context, onDisk);
}

export interface WalkResult {
  /** The refcount every host cluster should have. */
  expected: ExpectedRefcounts;
  /** Problems found in the metadata itself, and the allocation statistics. */
  counts: CheckCounts;
  /** The refcount table or blocks are unusable: only rebuilding them repairs the image. */
  rebuild: boolean;
}

/**
 * Walks all metadata of an image and returns the refcount each host cluster should have, without comparing
 * or repairing anything: what a writer needs to rebuild refcounts (e.g. after a crash with lazy refcounts).
 */
export async function walkReferences(layout: ImageLayout, options: { log?: CheckLog; repair?: RepairMode } = {}): Promise<WalkResult> {
  const onDisk = await OnDiskRefcounts.load(layout.file, layout.header, layout.geometry);
  const log = options.log ?? (() => undefined);
  const counts = emptyCounts();
  const context: WalkContext = {
    layout,
    snapshots: await readSnapshotTable(layout, counts, repairFlags(undefined), log),
    fileSize: layout.fileSize,
    expected: new ExpectedRefcounts(Math.ceil(layout.fileSize / layout.geometry.clusterSize), layout.header.refcountOrder),
    counts,
    log,
    repair: repairFlags(options.repair),
    rebuild: false,
  };
  await walkAll(context, onDisk);
  return { expected: context.expected, counts: context.counts, rebuild: context.rebuild };
}
