import type { TableCache } from '@q/cache';
import { referencedClusters, type ClusterMapper, type L2Writer } from '@q/mapper';
import type { ResizeParts } from './l1-growth.js';

export interface ShrinkParts extends ResizeParts {
  /** The virtual size before the shrink. */
  oldSize: number;
  mapper: ClusterMapper;
  l2Writer: L2Writer;
  l2Cache: TableCache;
}

/**
 * Shrinks the virtual disk to `size` bytes (qemu-img resize --shrink): every cluster wholly past the new end is
 * released: entries in the L2 table that straddles the end are cleared (a table shared with a snapshot is copied
 * first), tables wholly past it are unhooked from the L1 table, and refcount blocks left counting nothing are
 * released. The L1 table keeps its size (as QEMU keeps it); close cuts the file after its last cluster in use.
 *
 * Order (DESIGN.md): references go first, each step synced (L2 tables, then L1 entries), then the refcounts drop,
 * then the header takes the new size. A crash before the header write leaves the old size with zeros past the
 * new end, and leaked clusters at worst; never a reference to a freed cluster. Snapshots keep their own tables:
 * a cluster they still reach keeps a count from them. Runs under the metadata lock, with the writes flushed.
 */
export async function shrinkDisk(parts: ShrinkParts, size: number): Promise<void> {
  const { file, geometry, header, l1, refcounts, metadata, mapper, l2Writer, l2Cache } = parts;
  const { clusterSize, l2Entries } = geometry;
  const firstDropped = Math.ceil(size / clusterSize);
  const frees: number[] = [];

  // The table the new end falls inside: clear its entries past the end. QEMU discards that range through the
  // table and so allocates it (empty) when it is missing; so do we, so the file ends where QEMU's does.
  const straddling = Math.floor(firstDropped / l2Entries);
  if (firstDropped % l2Entries !== 0 && firstDropped < Math.ceil(parts.oldSize / clusterSize)) {
    const table = await l2Writer.writableTable(straddling);
    for (let index = firstDropped % l2Entries; index < l2Entries; index++) {
      const entry = l2Writer.entry(table, index);
      if (entry.hostOffset === 0 && !entry.compressed && entry.allocMask === 0 && entry.zeroMask === 0) continue;
      frees.push(...referencedClusters(entry, geometry));
      l2Writer.setEntry(table, index, { hostOffset: 0, copied: false, allocMask: 0, zeroMask: 0 });
    }
    await parts.syncRefcounts();
    await l2Cache.flush();
    await file.flush();
  }

  // Tables wholly past the end: unhook them (a snapshot may still reach them: then only this reference goes).
  const unhooked: number[] = [];
  for (let index = Math.ceil(firstDropped / l2Entries); index < l1.entries; index++) {
    const offset = l1.l2Offset(index);
    if (offset === 0) continue;
    const table = await mapper.loadL2(offset, index);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let entry = 0; entry < l2Entries; entry++) frees.push(...referencedClusters(mapper.decodeEntry(view, entry), geometry));
    await l1.set(index, 0, false, file);
    unhooked.push(offset);
  }
  if (unhooked.length > 0) await file.flush();

  // Nothing names these clusters any more (durable): their counts may drop.
  for (const offset of unhooked) {
    if ((await refcounts.adjust(offset / clusterSize, -1)) === 0) {
      metadata.remove(offset, clusterSize);
      l2Cache.drop(offset);
    }
  }
  for (const cluster of frees) await refcounts.adjust(cluster, -1);
  await refcounts.flush();
  await file.flush();
  await refcounts.releaseEmptyBlocks();
  await header.switchL1(l1.offset, l1.entries, size);
}
