import type { Geometry } from '@q/format';
import type { ClusterMapper, L2Writer } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import type { BlockFile } from '@q/raw';
import type { TrackedFile } from './tracked-file.js';

export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

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
  const { geometry, l2Writer, refcounts, file } = parts;
  const { clusterSize, l2Entries } = geometry;
  const clusters = Math.ceil(size / clusterSize);
  let dataEnd = 0;
  const runs: Array<[offset: number, length: number]> = [];
  // metadata: each L2 table, then the clusters it maps. falloc/full: QEMU takes all data clusters in one run
  // right after the first L2 table, and the other tables follow the data. Growing (resize) starts at
  // `fromCluster`, the first cluster wholly past the old end: the clusters before it are the guest's already.
  let oneRun: number | undefined;
  for (let first = fromCluster; first < clusters; ) {
    const tableEnd = (Math.floor(first / l2Entries) + 1) * l2Entries;
    const count = Math.min(tableEnd, clusters) - first;
    const table = await l2Writer.writableTable(Math.floor(first / l2Entries));
    let host: number;
    if (geometry.externalDataFile) host = first * clusterSize;
    else if (mode === 'metadata') host = await refcounts.allocate(count);
    else host = (oneRun ??= await refcounts.allocate(clusters - fromCluster)) + (first - fromCluster) * clusterSize;
    for (let i = 0; i < count; i++) {
      l2Writer.setEntry(table, (first % l2Entries) + i, { hostOffset: host + i * clusterSize, copied: true, allocMask: 0, zeroMask: 0 });
    }
    dataEnd = Math.max(dataEnd, host + count * clusterSize);
    runs.push([host, count * clusterSize]);
    first += count;
  }
  if (geometry.externalDataFile) {
    const from = fromCluster * clusterSize;
    await zeroFill(parts.dataFile, from, Math.max(0, size - from), mode !== 'metadata');
    return;
  }
  await file.extendTo(dataEnd);
  parts.mapper.imageFileSize = Math.max(parts.mapper.imageFileSize, file.end);
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
