import { encodeDataClusterRun, type Geometry } from '@q/format';
import type { ClusterMapper, L2Writer, NewTable } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import type { BlockFile } from '@q/raw';
import type { TrackedFile } from './tracked-file.js';

export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

/** Bytes of new L2 tables built before they are put in place (64 tables of 64 KiB). */
const TABLE_BYTES_AT_ONCE = 4 << 20;

export interface PreallocateParts {
  file: TrackedFile;
  dataFile: BlockFile;
  geometry: Geometry;
  mapper: ClusterMapper;
  l2Writer: L2Writer;
  refcounts: RefcountStore;
}

/**
 * Allocates every L2 table and data cluster of a fresh disk of `size` bytes, as `preallocation=metadata` does in
 * QEMU: each L2 table is followed by the clusters it maps, entries are plain data clusters (extended L2: allocated
 * clusters whose subclusters are all still unallocated, as QEMU writes them), and the file is extended to cover
 * them. `full` also writes zeros over the data; so does `falloc`, since writing is the only way Node has to reserve
 * the blocks (QEMU calls fallocate). Runs under the metadata lock.
 */
export async function preallocate(parts: PreallocateParts, size: number, mode: Preallocation, fromCluster = 0): Promise<void> {
  if (mode === 'off') return;
  const { geometry, l2Writer, refcounts, file, mapper } = parts;
  const { clusterSize, l2Entries } = geometry;
  const clusters = Math.ceil(size / clusterSize);
  let dataEnd = 0;
  const runs: Array<[offset: number, length: number]> = [];
  // New tables are built as bytes and put in place a batch at a time (L2Writer.installTables: one round of syncs
  // per batch); a table the image has already (the old last one, when growing) is changed in place.
  const tablesAtOnce = Math.max(1, Math.floor(TABLE_BYTES_AT_ONCE / clusterSize));
  let pending: NewTable[] = [];
  const install = async (): Promise<void> => {
    if (pending.length === 0) return;
    // The file covers the data the tables name before any of them is reachable (readers check against its end).
    if (!geometry.externalDataFile) {
      await file.extendTo(Math.max(file.end, dataEnd));
      mapper.imageFileSize = Math.max(mapper.imageFileSize, file.end);
    }
    await l2Writer.installTables(pending);
    pending = [];
  };
  // metadata: each L2 table, then the clusters it maps. falloc/full: QEMU takes all data clusters in one run
  // right after the first L2 table, and the other tables follow the data. Growing (resize) starts at
  // `fromCluster`, the first cluster wholly past the old end: the clusters before it are the guest's already.
  let oneRun: number | undefined;
  for (let first = fromCluster; first < clusters; ) {
    const l1Index = Math.floor(first / l2Entries);
    const count = Math.min((l1Index + 1) * l2Entries, clusters) - first;
    const existing = mapper.l1.l2Offset(l1Index) === 0 ? undefined : await l2Writer.writableTable(l1Index);
    // Counted in this order (table, then its data) as before: the same layout as QEMU's.
    const tableOffset = existing === undefined ? await refcounts.allocate(1) : existing.offset;
    let host: number;
    if (geometry.externalDataFile) host = first * clusterSize;
    else if (mode === 'metadata') host = await refcounts.allocate(count);
    else host = (oneRun ??= await refcounts.allocate(clusters - fromCluster)) + (first - fromCluster) * clusterSize;
    if (existing !== undefined) l2Writer.setDataRun(existing, first % l2Entries, count, host);
    else {
      const bytes = new Uint8Array(clusterSize);
      encodeDataClusterRun(new DataView(bytes.buffer), first % l2Entries, count, host, geometry);
      pending.push({ l1Index, offset: tableOffset, bytes });
    }
    dataEnd = Math.max(dataEnd, host + count * clusterSize);
    runs.push([host, count * clusterSize]);
    first += count;
    if (pending.length >= tablesAtOnce) await install();
  }
  await install();
  if (geometry.externalDataFile) {
    const from = fromCluster * clusterSize;
    await zeroFill(parts.dataFile, from, Math.max(0, size - from), mode !== 'metadata');
    return;
  }
  await file.extendTo(dataEnd);
  mapper.imageFileSize = Math.max(mapper.imageFileSize, file.end);
  if (mode !== 'metadata') for (const [offset, length] of runs) await zeroFill(file, offset, length, true);
}

/** Writes zeros over `[offset, offset + length)` when `write`, else only makes the file cover it. */
async function zeroFill(file: BlockFile, offset: number, length: number, write: boolean): Promise<void> {
  if (!write) {
    if ((await file.size()) < offset + length) await file.truncate(offset + length);
    return;
  }
  const zeros = new Uint8Array(Math.min(length, 1 << 20));
  for (let at = 0; at < length; at += zeros.length) await file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
}
