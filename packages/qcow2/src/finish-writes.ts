import type { RefcountStore } from '@q/refcount';
import type { TrackedFile } from './tracked-file.js';
import type { WritableParts } from './writable-parts.js';

/**
 * What a writable image does before its files close: make everything durable (the flush also punches the holes
 * of clusters freed since the last one), store the persistent bitmaps it maintains, clear the dirty bit this
 * session set (lazy refcounts: the refcounts on disk are whole again), and, when the session changed the image,
 * cut free clusters off the end of the file. An image only read through a writable open is left byte for byte as
 * it was.
 */
export async function finishWrites(writer: WritableParts, changed: boolean): Promise<void> {
  await writer.writePath.flush();
  if (!changed) return;
  // Bitmaps go after the guest data is durable (the bits describe it), and before the dirty bit is cleared (their
  // clusters' refcounts are written lazily too); the second flush makes their frees durable.
  await writer.lock.run(() => writer.bitmaps.store());
  await writer.writePath.flush();
  if (writer.lazyRefcounts && writer.header.dirty) await writer.header.setDirty(false);
  const { file, refcounts, geometry } = writer.resizeParts;
  await trimFreeTail(file, refcounts, geometry.clusterSize);
}

/**
 * Lets close cut the file after its last cluster in use (QEMU keeps free clusters at the end; a discarded or
 * deleted tail then costs nothing, not even a hole). Safe once the refcounts are durable: a cluster with refcount
 * 0 is named by nothing on disk (references go before refcounts drop), so no table can point past the new end.
 * A partly used last cluster (tables written without padding, as QEMU writes them) keeps its bytes as they are.
 */
export async function trimFreeTail(file: TrackedFile, refcounts: RefcountStore, clusterSize: number): Promise<void> {
  const last = await refcounts.highestInUse(Math.ceil(file.end / clusterSize));
  file.trimTo((last + 1) * clusterSize);
}

/**
 * Cuts the file after its last cluster in use now (the flush's DeallocationQueue.release), under the metadata
 * lock once the refcounts are durable, by trimFreeTail's reasoning: new clusters are claimed under the same lock
 * and in-place writes go to clusters in use, so no write in flight reaches past the cut. Returns the first
 * cluster past the cut. A partly used last cluster keeps its bytes.
 */
export async function cutFreeTail(file: TrackedFile, refcounts: RefcountStore, clusterSize: number): Promise<number> {
  const first = (await refcounts.highestInUse(Math.ceil(file.end / clusterSize))) + 1;
  if (file.end > first * clusterSize) await file.truncate(first * clusterSize);
  return first;
}
