import type { OnDiskRefcounts } from './on-disk-refcounts.js';
import { addReferences, type WalkContext } from './walk-context.js';

/**
 * Counts the refcount blocks the refcount table names, and judges the table entries: reserved bits, unaligned
 * blocks and blocks that something else also uses all call for a rebuild; a block past the end of the image is
 * repaired (with `-r all`) by growing the file to hold it, which is what QEMU does.
 */
export async function checkRefcountBlocks(context: WalkContext, onDisk: OnDiskRefcounts): Promise<void> {
  const { counts, expected } = context;
  const { geometry } = context.layout;
  const clusterSize = geometry.clusterSize;
  for (let i = 0; i < onDisk.offsets.length; i++) {
    const offset = onDisk.offsets[i]!;
    if (onDisk.reservedBits[i] !== 0) {
      context.log(`ERROR refcount table entry ${i} has reserved bits set`);
      counts.corruptions++;
      context.rebuild = true;
      continue;
    }
    if (Number.isFinite(offset) && offset % clusterSize !== 0) {
      context.log(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
      counts.corruptions++;
      context.rebuild = true;
      continue;
    }
    const cluster = offset / clusterSize;
    if (cluster >= expected.size) {
      counts.corruptions++;
      const repair = context.repair.errors;
      context.log(`${repair ? 'Repairing' : 'ERROR'} refcount block ${i} is outside image`);
      if (!repair) continue;
      // The block reads as zeros either way; growing the file makes it real, so it can be counted and used.
      const failure = await growFile(context, offset + clusterSize);
      if (failure !== undefined) {
        // Then only a rebuild (which drops the entry) can repair it.
        context.rebuild = true;
        context.log(`ERROR could not resize image: ${failure}`);
        continue;
      }
      expected.grow(Math.ceil(context.fileSize / clusterSize));
      counts.corruptions--;
      counts.corruptionsFixed++;
      addReferences(context, offset, clusterSize);
      continue;
    }
    if (offset !== 0) {
      addReferences(context, offset, clusterSize);
      const references = expected.get(cluster);
      if (references !== 1) {
        context.log(`ERROR refcount block ${i} refcount=${references}`);
        counts.corruptions++;
        context.rebuild = true;
      }
    }
  }
}

/** Grows the file to `size`; returns why it could not (a file system limit, an offset no file can reach). */
async function growFile(context: WalkContext, size: number): Promise<string | undefined> {
  if (!Number.isSafeInteger(size)) return 'Invalid argument';
  try {
    await context.layout.file.truncate(size);
    context.fileSize = await context.layout.file.size();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
