import { DiskError } from '@q/raw';
import {
  encodeHeaderFields,
  encodeSnapshotEntry,
  getRefcountExact,
  SNAPSHOT_KNOWN_EXTRA_BYTES,
  SNAPSHOT_NO_ICOUNT,
  writeSnapshotExtraData,
} from '@q/format';
import type { CheckLog } from './check-result.js';
import type { ImageLayout } from './image-layout.js';
import type { OnDiskRefcounts } from './on-disk-refcounts.js';
import type { CheckedSnapshot, SnapshotTable } from './snapshot-table-check.js';

/**
 * Writes the snapshot table afresh, with complete entries (every entry gets the 24 bytes of extra data QEMU
 * writes: 64-bit VM state size, disk size, icount), which repairs "incomplete" entries. Crash-safe order: the new
 * clusters get their refcount, the table is written, then the header switches to it in one write, then the old
 * table's clusters are freed. Placement is QEMU's allocator's: the first run of free clusters from the start.
 */
export async function rewriteSnapshotTable(layout: ImageLayout, onDisk: OnDiskRefcounts, table: SnapshotTable, log: CheckLog): Promise<void> {
  const { file, geometry } = layout;
  const clusterSize = geometry.clusterSize;
  const diskSize = Math.floor(layout.header.size / 512) * 512;
  const encoded = table.entries.map((entry) => encodeEntry(entry, diskSize));
  let size = 0;
  for (const bytes of encoded) size = Math.ceil(size / 8) * 8 + bytes.length;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const entry of encoded) {
    at = Math.ceil(at / 8) * 8;
    bytes.set(entry, at);
    at += entry.length;
  }
  const clusters = Math.ceil(size / clusterSize);
  const first = await findFreeRun(onDisk, clusters, oldTableClusters(table, clusterSize), file.name);
  for (let i = 0; i < clusters; i++) await onDisk.set(first + i, 1);
  await file.flush();
  const offset = first * clusterSize;
  await file.write(bytes, offset);
  await file.flush();
  // nb_snapshots and snapshots_offset are adjacent: they switch together.
  const switched = { ...layout.header, nbSnapshots: table.entries.length, snapshotsOffset: offset };
  const patch = encodeHeaderFields(switched, ['nbSnapshots', 'snapshotsOffset']);
  await file.write(patch.bytes, patch.offset);
  await file.flush();
  await freeOldTable(layout, onDisk, table, log);
}

/**
 * The clusters the old table occupies. They may read as free (a table past the end of the file is not counted)
 * but the header points there until the switch, so the new table must not land on them (QEMU's overlap check
 * refuses such a write and gives up; we place the table elsewhere).
 */
function oldTableClusters(table: SnapshotTable, clusterSize: number): [first: number, last: number] {
  if (typeof table.offset === 'bigint' || table.bytes === 0) return [-1, -1];
  return [Math.floor(table.offset / clusterSize), Math.floor((table.offset + table.bytes - 1) / clusterSize)];
}

/** The first run of `count` clusters at refcount 0 that existing refcount blocks describe, avoiding `avoid`. */
async function findFreeRun(onDisk: OnDiskRefcounts, count: number, avoid: [number, number], fileName: string): Promise<number> {
  const perBlock = onDisk.blockEntries;
  let start = 0;
  for (let index = 0; index < onDisk.offsets.length; index++) {
    const block = await onDisk.block(index);
    // A cluster without a block has refcount 0 but no place to record 1: allocating there would mean growing
    // the refcount structures, which this repair does not do.
    if (block === undefined || !(block instanceof Uint8Array)) {
      start = (index + 1) * perBlock;
      continue;
    }
    for (let cluster = index * perBlock; cluster < (index + 1) * perBlock; cluster++) {
      const inOldTable = cluster >= avoid[0] && cluster <= avoid[1];
      if (inOldTable || getRefcountExact(block, cluster - index * perBlock, onDisk.refcountOrder) !== 0) start = cluster + 1;
      else if (cluster - start + 1 === count) return start;
    }
  }
  throw new DiskError('E_UNSUPPORTED', 'no free clusters described by the refcount blocks for the new snapshot table', { file: fileName });
}

/** Frees the old table's clusters; as in QEMU, a count that would drop below zero frees nothing and is reported. */
async function freeOldTable(layout: ImageLayout, onDisk: OnDiskRefcounts, table: SnapshotTable, log: CheckLog): Promise<void> {
  if (typeof table.offset === 'bigint' || table.bytes === 0) return;
  const clusterSize = layout.geometry.clusterSize;
  const first = Math.floor(table.offset / clusterSize);
  const last = Math.floor((table.offset + table.bytes - 1) / clusterSize);
  const counts: number[] = [];
  for (let cluster = first; cluster <= last; cluster++) {
    const refcount = await onDisk.get(cluster);
    if (typeof refcount !== 'number' || refcount === 0) {
      log('qcow2_free_clusters failed: Invalid argument');
      return;
    }
    counts.push(refcount);
  }
  for (let cluster = first; cluster <= last; cluster++) await onDisk.set(cluster, counts[cluster - first]! - 1);
}

/** One entry as QEMU writes it: the ids and names as C strings, at least 24 bytes of extra data. */
function encodeEntry(entry: CheckedSnapshot, diskSize: number): Uint8Array {
  const { head, knownExtra } = entry;
  const vmStateSize = knownExtra.vmStateSize ?? BigInt(head.vmStateSize32);
  const extraData = new Uint8Array(Math.max(SNAPSHOT_KNOWN_EXTRA_BYTES, entry.extraDataSize));
  extraData.set(entry.unknownExtra, SNAPSHOT_KNOWN_EXTRA_BYTES);
  writeSnapshotExtraData(extraData, {
    vmStateSize,
    diskSize: knownExtra.diskSize ?? BigInt(diskSize),
    icount: knownExtra.icount ?? SNAPSHOT_NO_ICOUNT,
  });
  return encodeSnapshotEntry({
    ...head,
    // A VM state too large for 32 bits is left out there, so older readers see a disk-only snapshot.
    vmStateSize32: vmStateSize <= 0xffff_ffffn ? Number(vmStateSize) : 0,
    extraData,
    idBytes: cStringBytes(entry.idBytes),
    nameBytes: cStringBytes(entry.nameBytes),
  });
}

function cStringBytes(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}
