import { encodeSnapshotTable, MAX_SNAPSHOTS, snapshotEntrySize, type SnapshotEntry } from '@q/format';

const MAX_NAME_BYTES = 255;
import { ACTIVE_L2_TABLE, type L1Table, type MetadataRegions } from '@q/mapper';
import { DiskError } from '@q/raw';
import { readSnapshotL1, snapshotDiskSize } from '@q/snapshots';
import type { DeallocationQueue } from './deallocation-queue.js';
import type { HeaderState } from './header-state.js';
import type { ImageMetadata } from './image-metadata.js';
import { adjustTree, l2Tables, recomputeCopied, type TreeParts } from './snapshot-tree.js';
import type { TrackedFile } from './tracked-file.js';
import type { WritableParts } from './writable-parts.js';

export interface SnapshotParts extends TreeParts {
  file: TrackedFile;
  header: HeaderState;
  l1: L1Table;
  metadata: ImageMetadata;
  regions: MetadataRegions;
  /** Writes back refcounts (and syncs them unless refcounts are lazy). */
  syncRefcounts(): Promise<void>;
  /** Where the clusters an operation frees wait for their holes. */
  deallocations: DeallocationQueue;
}

/** The parts a snapshot operation works on, from a writable image's. */
export function snapshotParts(writer: WritableParts, image: { name: string; metadata: ImageMetadata; mapper: TreeParts['mapper'] }): SnapshotParts {
  const { file, header, l1, refcounts, syncRefcounts } = writer.resizeParts;
  const { name: imageName, metadata, mapper } = image;
  const { l2Cache, deallocations } = writer;
  return { imageName, geometry: metadata.geometry, mapper, l2Cache, refcounts, file, header, l1, metadata, regions: metadata.regions, syncRefcounts, deallocations };
}

/**
 * Internal snapshot create, delete and apply (spec: "Snapshots"). The caller has flushed the write path and holds
 * the metadata lock. On v3 images the dirty bit covers each operation: refcounts and COPIED flags cannot change
 * together, so a crash in between leaves a mismatch `qemu-img check` would call corruption; with the bit set the
 * next read-write open rebuilds them (QEMU does the same), and the bit is cleared once all is durable. Every step
 * is ordered so that what a crash leaves is at worst leaked clusters or an extra copy-on-write.
 */
export async function withDirtyBit<T>(parts: SnapshotParts, operation: () => Promise<T>): Promise<T> {
  const mark = parts.header.header.version >= 3 && !parts.header.dirty;
  if (mark) await parts.header.setDirty(true);
  const result = await operation();
  await flushAll(parts);
  if (mark) await parts.header.setDirty(false);
  // Every table that named what the operation freed is durable now: give that space back at once (snapshot delete).
  await parts.deallocations.release();
  return result;
}

async function flushAll(parts: SnapshotParts): Promise<void> {
  await parts.syncRefcounts();
  await parts.l2Cache.flush();
  await parts.file.flush();
}

/** QEMU's choice of id for a new snapshot: one more than the largest numeric id. */
export function nextSnapshotId(entries: readonly SnapshotEntry[]): string {
  let max = 0;
  for (const entry of entries) {
    const value = /^\d+$/.test(entry.id) ? Number(entry.id) : 0;
    if (value > max) max = value;
  }
  return String(max + 1);
}

export async function createSnapshot(parts: SnapshotParts, requestedName: string, size: number, now: Date): Promise<SnapshotEntry> {
  const { geometry, l1, refcounts, file } = parts;
  if (parts.metadata.snapshots.length >= MAX_SNAPSHOTS) throw new DiskError('E_TOO_LARGE', 'File too large');
  // qemu-img keeps at most 255 bytes of a name (its snapshot name buffer), cut where the bytes end.
  const nameBytes = new TextEncoder().encode(requestedName).subarray(0, MAX_NAME_BYTES);
  const name = new TextDecoder().decode(nameBytes);
  // 1. The active tree stops being exclusive: clear COPIED (an extra copy-on-write is harmless; a COPIED flag on
  //    a shared cluster is not), then count the snapshot's reference to every table and cluster.
  // The snapshot keeps the table as it was, COPIED flags included (QEMU does; they mean nothing in a snapshot).
  const l1Copy = l1.raw.slice();
  await writeCopied(parts, await recomputeCopied(parts, l1, true));
  await adjustTree(parts, l1Copy, 1);
  await parts.syncRefcounts();
  // 2. The snapshot's own L1 table.
  let l1Offset = 0;
  if (l1Copy.length > 0) {
    // Written as is, without padding the file to a whole cluster (as QEMU writes it).
    l1Offset = await refcounts.allocate(Math.ceil(l1Copy.length / geometry.clusterSize));
    await parts.syncRefcounts();
    await file.write(l1Copy, l1Offset);
    await file.flush();
  }
  const seconds = Math.floor(now.getTime() / 1000);
  const entry: SnapshotEntry = {
    l1TableOffset: l1Offset,
    l1Size: l1.entries,
    id: nextSnapshotId(parts.metadata.snapshots),
    name,
    nameBytes,
    dateSeconds: seconds,
    dateNanoseconds: (now.getTime() % 1000) * 1_000_000,
    vmClockNanoseconds: 0,
    vmStateSize: 0,
    diskSize: size,
    // As qemu-img, v2 and v3 alike: 24 bytes of extra data, instruction count 0 (no VM ran).
    icount: 0,
    extraData: new Uint8Array(24),
  };
  // 3. The new table names it; the header switches to that table in one write.
  await writeSnapshotTable(parts, [...parts.metadata.snapshots, entry]);
  parts.metadata.snapshots.push(entry);
  if (l1Offset !== 0) parts.regions.add(l1Offset, l1Copy.length, `L1 table of snapshot '${name}'`);
  return entry;
}

export async function deleteSnapshot(parts: SnapshotParts, entry: SnapshotEntry): Promise<void> {
  const { geometry, file, refcounts } = parts;
  const l1 = await readSnapshotL1(file, entry, geometry, file.end);
  // 1. Forget the entry (durable), so nothing names its tree any more; a crash after this only leaks.
  await writeSnapshotTable(
    parts,
    parts.metadata.snapshots.filter((other) => other !== entry),
  );
  parts.metadata.snapshots.splice(parts.metadata.snapshots.indexOf(entry), 1);
  // 2. Drop its references, free its L1 table, and give back COPIED to what is exclusive again.
  forgetTables(parts, await adjustTree(parts, l1, -1));
  if (entry.l1Size > 0) {
    const clusters = Math.ceil((entry.l1Size * 8) / geometry.clusterSize);
    for (let i = 0; i < clusters; i++) await refcounts.adjust(entry.l1TableOffset / geometry.clusterSize + i, -1);
    parts.regions.remove(entry.l1TableOffset, entry.l1Size * 8);
  }
  await parts.syncRefcounts();
  await restoreCopied(parts);
}

/** Makes the snapshot's state the active one; returns the virtual size the disk now has. */
export async function applySnapshot(parts: SnapshotParts, entry: SnapshotEntry, currentSize: number): Promise<number> {
  const { geometry, file, l1, header } = parts;
  const target = await readSnapshotL1(file, entry, geometry, file.end);
  if (target.length > l1.raw.length) {
    throw new DiskError('E_UNSUPPORTED', `snapshot '${entry.name}' has a larger L1 table than the image: not supported yet`);
  }
  // 1. Count the active table's new references to the snapshot's tree, then point the active table at it.
  await adjustTree(parts, target, 1);
  await parts.syncRefcounts();
  const old = l1.raw.slice();
  const next = new Uint8Array(l1.raw.length);
  next.set(target);
  await parts.l2Cache.flush();
  await file.write(next, l1.offset);
  await file.flush();
  l1.replace(next, l1.offset);
  const size = snapshotDiskSize(entry, currentSize);
  if (size !== header.header.size) await header.switchL1(l1.offset, l1.entries, size);
  // 2. Drop the old active tree's references, then set COPIED where the new tree is exclusive.
  forgetTables(parts, await adjustTree(parts, old, -1));
  for (const [, offset] of l2Tables(l1)) parts.regions.add(offset, geometry.clusterSize, ACTIVE_L2_TABLE);
  await parts.syncRefcounts();
  await restoreCopied(parts);
  return size;
}

/** L2 tables whose last reference went: no longer metadata to guard, nor worth caching. */
function forgetTables(parts: SnapshotParts, offsets: number[]): void {
  for (const offset of offsets) {
    parts.l2Cache.drop(offset);
    parts.regions.remove(offset, parts.geometry.clusterSize);
  }
}

async function restoreCopied(parts: SnapshotParts): Promise<void> {
  await writeCopied(parts, await recomputeCopied(parts, parts.l1));
}

/** Writes back the L2 tables whose COPIED flags changed, then the active L1 table with its new flags; synced. */
async function writeCopied(parts: SnapshotParts, l1Bytes: Uint8Array): Promise<void> {
  const { l1, file } = parts;
  await parts.l2Cache.flush();
  await file.write(l1Bytes, l1.offset);
  l1.replace(l1Bytes, l1.offset);
  await file.flush();
}

/** Writes a snapshot table elsewhere, switches the header to it (one write, synced), then frees the old one. */
async function writeSnapshotTable(parts: SnapshotParts, entries: SnapshotEntry[]): Promise<void> {
  const { geometry, file, header, refcounts, regions } = parts;
  // QEMU pads every entry to 8 bytes but the last: the table (and the file, when it ends there) stops after it.
  const padded = encodeSnapshotTable(entries);
  const last = entries.at(-1);
  const bytes = last === undefined ? padded : padded.subarray(0, padded.length - snapshotEntrySize(last) + unpaddedEntrySize(last));
  const clusters = Math.ceil(bytes.length / geometry.clusterSize);
  let offset = 0;
  if (clusters > 0) {
    offset = await refcounts.allocate(clusters);
    await parts.syncRefcounts();
    await file.write(bytes, offset);
    await file.flush();
  }
  const old = { offset: header.header.snapshotsOffset, count: header.header.nbSnapshots, bytes: encodeSnapshotTable(parts.metadata.snapshots).length };
  header.header.nbSnapshots = entries.length;
  header.header.snapshotsOffset = offset;
  await header.write();
  if (old.count > 0 && old.offset !== 0) {
    const oldClusters = Math.ceil(old.bytes / geometry.clusterSize);
    regions.remove(old.offset, oldClusters * geometry.clusterSize);
    for (let i = 0; i < oldClusters; i++) await refcounts.adjust(old.offset / geometry.clusterSize + i, -1);
  }
  if (offset !== 0) regions.add(offset, clusters * geometry.clusterSize, 'snapshot table');
}

function unpaddedEntrySize(entry: SnapshotEntry): number {
  const text = new TextEncoder();
  const id = entry.idBytes ?? text.encode(entry.id);
  const name = entry.nameBytes ?? text.encode(entry.name);
  return 40 + entry.extraData.length + id.length + name.length;
}
