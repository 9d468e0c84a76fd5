import { readPadded } from '@q/raw';
import { readL2EntryWords, setL1EntryCopied, setL2EntryCopied, view } from '@q/format';
import type { CheckCounts, CheckLog, RepairFlags } from './check-result.js';
import type { ImageLayout } from './image-layout.js';
import { clusterOf, isZeroOffset } from './host-offset.js';
import { isCopied, l1EntryOffsetOf, l2Kind, standardOffset } from './l2-kind.js';
import type { OnDiskRefcounts } from './on-disk-refcounts.js';
import { hex, u64 } from './printf.js';

/**
 * Checks the COPIED flags of the active L1 table and the L2 tables it reaches against the recorded refcounts
 * (spec: COPIED is set exactly when the refcount is 1, i.e. the cluster may be written in place). Runs after
 * the refcounts were repaired, so with `-r leaks` it repairs only when nothing else is left wrong (then the
 * refcounts can be trusted); with `-r all` it always repairs.
 */
export async function checkCopiedFlags(
  layout: ImageLayout,
  onDisk: OnDiskRefcounts,
  counts: CheckCounts,
  fix: RepairFlags,
  log: CheckLog,
): Promise<void> {
  const { file, header, geometry } = layout;
  const repair = fix.errors || (fix.leaks && counts.checkErrors === 0 && counts.corruptions === 0 && counts.leaks === 0);
  const verb = repair ? 'Repairing' : 'ERROR';
  const clusterBits = geometry.clusterBits;
  const l1 = new Uint8Array(header.l1Size * 8);
  await readPadded(file, l1, header.l1TableOffset);
  const l1View = view(l1);
  const table = new Uint8Array(geometry.clusterSize);
  const tableView = view(table);
  const flags = { extendedL2: geometry.extendedL2, externalDataFile: geometry.externalDataFile };
  for (let i = 0; i < header.l1Size; i++) {
    const hi = l1View.getUint32(i * 8);
    const lo = l1View.getUint32(i * 8 + 4);
    const l2Offset = l1EntryOffsetOf(hi, lo);
    if (isZeroOffset(l2Offset)) continue;
    const l2Refcount = await onDisk.get(clusterOf(l2Offset, clusterBits));
    // An unreadable refcount was already reported while comparing; QEMU stays silent here.
    if (typeof l2Refcount === 'number' && (l2Refcount === 1) !== isCopied(hi)) {
      counts.corruptions++;
      log(`${verb} OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${hex(u64(hi, lo))} refcount=${l2Refcount}`);
      if (repair) {
        // Only the flag changes: whatever else the entry holds (reserved bits too) is written back as read.
        setL1EntryCopied(l1View, i, l2Refcount === 1);
        await file.write(l1.slice(i * 8, i * 8 + 8), header.l1TableOffset + i * 8);
        counts.corruptions--;
        counts.corruptionsFixed++;
      }
    }
    // A table beyond 2^53 lies past the end of the file and reads as zeros.
    if (typeof l2Offset === 'bigint') continue;
    await readPadded(file, table, l2Offset);
    let dirty = 0;
    for (let j = 0; j < geometry.l2Entries; j++) {
      const { hi: entryHi, lo: entryLo } = readL2EntryWords(tableView, j, geometry.extendedL2);
      const kind = l2Kind(entryHi, entryLo, flags);
      if (kind !== 'normal' && kind !== 'zero-alloc') continue;
      // Data file clusters are not refcounted: each belongs to exactly one guest cluster.
      const refcount = geometry.externalDataFile ? 1 : await onDisk.get(clusterOf(standardOffset(entryHi, entryLo), clusterBits));
      if (typeof refcount !== 'number') continue;
      if ((refcount === 1) === isCopied(entryHi)) continue;
      counts.corruptions++;
      log(`${verb} OFLAG_COPIED data cluster: l2_entry=${hex(u64(entryHi, entryLo))} refcount=${refcount}`);
      if (repair) {
        setL2EntryCopied(tableView, j, refcount === 1, geometry);
        dirty++;
      }
    }
    if (dirty > 0) {
      await file.write(table, l2Offset);
      counts.corruptions -= dirty;
      counts.corruptionsFixed += dirty;
    }
  }
}
