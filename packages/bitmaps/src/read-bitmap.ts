import { decodeBitmapTableEntry, type BitmapEntry } from '@q/format';
import { DiskError, readExact, type BlockFile } from '@q/raw';
import { bitmapTableSize, loadBitmapCluster } from './bitmap-clusters.js';
import { DirtyBitmap } from './dirty-bitmap.js';

/** Where a stored bitmap's data lies: its table as decoded (one entry per data cluster). */
export interface StoredBitmap {
  bitmap: DirtyBitmap;
  /** The host clusters its table names (the data), for whoever replaces or frees them. */
  dataClusters: number[];
}

/**
 * Reads a persistent bitmap from the image: its table, then each data cluster the table names. The checks are
 * QEMU's when it loads a bitmap: a table whose size does not fit the disk, an entry with reserved bits or an
 * unaligned cluster, a cluster past the end of the file all refuse the bitmap (E_CORRUPT), never half-load it.
 */
export async function readBitmap(file: BlockFile, entry: BitmapEntry, diskSize: number, clusterSize: number): Promise<StoredBitmap> {
  const granularity = 2 ** entry.granularityBits;
  const bitmap = new DirtyBitmap(diskSize, granularity);
  const expected = bitmapTableSize(diskSize, granularity, clusterSize);
  if (entry.tableSize !== expected) {
    throw new DiskError('E_CORRUPT', `bitmap '${entry.name}' has a table of ${entry.tableSize} entries; the disk size needs ${expected}`);
  }
  if (entry.tableOffset === 0 || entry.tableOffset % clusterSize !== 0) {
    throw new DiskError('E_CORRUPT', `bitmap '${entry.name}' has an invalid table offset ${entry.tableOffset}`);
  }
  const table = new Uint8Array(entry.tableSize * 8);
  await readExact(file, table, entry.tableOffset, `table of bitmap '${entry.name}'`);
  const dataClusters: number[] = [];
  const cluster = new Uint8Array(clusterSize);
  for (let index = 0; index < entry.tableSize; index++) {
    const decoded = decodeBitmapTableEntry(table, index, clusterSize);
    if (decoded === undefined) throw new DiskError('E_CORRUPT', `bitmap '${entry.name}' has an invalid table entry ${index}`);
    if (decoded.kind !== 'data') {
      loadBitmapCluster(bitmap, index, clusterSize, decoded.kind);
      continue;
    }
    // The data past the bitmap's end in its last cluster need not exist in the file; read only what counts.
    const used = Math.min(clusterSize, bitmap.bytes.length - index * clusterSize);
    await readExact(file, cluster.subarray(0, used), decoded.offset, `data of bitmap '${entry.name}'`);
    loadBitmapCluster(bitmap, index, clusterSize, cluster.subarray(0, used));
    dataClusters.push(decoded.offset);
  }
  return { bitmap, dataClusters };
}
