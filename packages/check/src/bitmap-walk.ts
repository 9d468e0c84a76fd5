import { DiskError } from '@q/raw';
import { bitmapTableValid, forEachBitmapEntry } from './bitmap-table.js';
import { isZeroOffset } from './host-offset.js';
import { addReferences, type WalkContext } from './walk-context.js';

/**
 * Counts the clusters of persistent dirty bitmaps: the directory, every bitmap table and the data clusters
 * those tables name. A table QEMU cannot load (reserved bits, an unaligned cluster; possible here only for a
 * bitmap marked in use, since the others are loaded when the image opens) stops the check, as it does in QEMU
 * ("Check failed: Invalid argument"), after counting one corruption.
 */
export async function walkBitmaps(context: WalkContext): Promise<void> {
  const bitmaps = context.layout.bitmaps;
  if (bitmaps === undefined || bitmaps.entries.length === 0) return;
  const { file, geometry } = context.layout;
  addReferences(context, bitmaps.offset, bitmaps.size);
  for (const bitmap of bitmaps.entries) {
    addReferences(context, bitmap.tableOffset, bitmap.tableSize * 8);
    // QEMU loads the whole table before it counts any cluster in it: a bad entry anywhere means none count.
    if (!(await bitmapTableValid(file, bitmap, geometry.clusterSize))) {
      context.counts.corruptions++;
      throw new DiskError('E_CORRUPT', 'Invalid argument', { file: file.name });
    }
    await forEachBitmapEntry(file, bitmap, (_hi, _lo, offset) => {
      if (!isZeroOffset(offset)) addReferences(context, offset, geometry.clusterSize);
      return true;
    });
  }
}
