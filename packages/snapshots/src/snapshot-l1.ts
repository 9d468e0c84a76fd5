import { MAX_L1_TABLE_BYTES, type Geometry, type SnapshotEntry } from '@q/format';
import { DiskError, readExact, type BlockFile } from '@q/raw';

/** The guest size a snapshot shows: the disk size it recorded, or (older entries) the image's current size. */
export function snapshotDiskSize(entry: SnapshotEntry, currentSize: number): number {
  return entry.diskSize ?? currentSize;
}

/**
 * Loads a snapshot's L1 table, checked as QEMU checks the active one: within its size limit, cluster aligned,
 * inside the file.
 */
export async function readSnapshotL1(
  file: BlockFile,
  entry: SnapshotEntry,
  geometry: Geometry,
  fileSize: number,
  maxTableBytes = MAX_L1_TABLE_BYTES,
): Promise<Uint8Array> {
  const bytes = entry.l1Size * 8;
  const what = `snapshot '${entry.name}' L1 table`;
  if (bytes > maxTableBytes) {
    throw new DiskError('E_TOO_LARGE', `${what} is too large (${entry.l1Size} entries)`, { file: file.name });
  }
  if (bytes === 0) return new Uint8Array(0);
  if (entry.l1TableOffset % geometry.clusterSize !== 0 || entry.l1TableOffset === 0) {
    throw new DiskError('E_CORRUPT', `${what} offset 0x${entry.l1TableOffset.toString(16)} is invalid`, {
      file: file.name,
      offset: entry.l1TableOffset,
    });
  }
  if (entry.l1TableOffset + bytes > fileSize) {
    throw new DiskError('E_PAST_EOF', `${what} runs past the end of the file`, { file: file.name, offset: entry.l1TableOffset });
  }
  const table = new Uint8Array(bytes);
  await readExact(file, table, entry.l1TableOffset, what);
  return table;
}
