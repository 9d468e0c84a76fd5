import { l1EntriesFor, type Geometry } from '@q/format';
import type { L1Table, MetadataRegions } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import type { HeaderState } from './header-state.js';
import type { TrackedFile } from './tracked-file.js';

export interface ResizeParts {
  file: TrackedFile;
  geometry: Geometry;
  header: HeaderState;
  l1: L1Table;
  refcounts: RefcountStore;
  metadata: MetadataRegions;
  syncRefcounts(): Promise<void>;
}

/**
 * Grows the virtual disk to `size` bytes. When the L1 table is too small for the new size it moves to a new, exact
 * size table (as QEMU sizes it on resize): the new table is written and synced, the header switches to it (table,
 * size and disk size in one write, synced), and only then are the old table's clusters released.
 * Runs under the metadata lock.
 */
export async function growDisk(parts: ResizeParts, size: number): Promise<void> {
  const { file, geometry, header, l1, refcounts, metadata } = parts;
  const needed = l1EntriesFor(size, geometry);
  if (needed <= l1.entries) {
    await header.switchL1(l1.offset, l1.entries, size);
    return;
  }
  const bytes = new Uint8Array(needed * 8);
  bytes.set(l1.raw);
  const clusters = Math.ceil(bytes.length / geometry.clusterSize);
  const offset = await refcounts.allocate(clusters);
  await parts.syncRefcounts();
  await file.write(bytes, offset);
  await file.flush();
  const oldOffset = l1.offset;
  const oldClusters = Math.ceil((l1.entries * 8) / geometry.clusterSize);
  await header.switchL1(offset, needed, size);
  l1.replace(bytes, offset);
  metadata.add(offset, bytes.length, 'active L1 table');
  if (oldClusters > 0 && oldOffset !== 0) {
    metadata.remove(oldOffset, oldClusters * geometry.clusterSize);
    const first = oldOffset / geometry.clusterSize;
    for (let i = 0; i < oldClusters; i++) await refcounts.adjust(first + i, -1);
  }
}
