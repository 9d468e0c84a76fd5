import { decodeSnapshotTable, measureSnapshotTable, MAX_SNAPSHOT_TABLE_BYTES, type SnapshotEntry } from '@q/format';
import { DiskError, isDiskError, readExact, type BlockFile } from '@q/raw';

const FIRST_CHUNK = 64 * 1024;

/**
 * Reads the snapshot table at `offset` holding `count` entries. The table has no stored length, so it is read in
 * growing chunks until the entries fit: a lying count or entry length costs at most QEMU's 64 MiB table limit,
 * and a table running past the end of the file is an error.
 */
export async function readSnapshotTable(
  file: BlockFile,
  offset: number,
  count: number,
  fileSize: number,
  maxTableBytes = MAX_SNAPSHOT_TABLE_BYTES,
): Promise<SnapshotEntry[]> {
  if (count === 0) return [];
  if (offset >= fileSize) {
    throw new DiskError('E_PAST_EOF', `snapshot table at offset ${offset} lies past the end of the file`, { file: file.name, offset });
  }
  const available = Math.min(fileSize - offset, maxTableBytes);
  let chunk = Math.min(FIRST_CHUNK, available);
  for (;;) {
    const bytes = new Uint8Array(chunk);
    await readExact(file, bytes, offset, 'snapshot table');
    const length = measureSnapshotTable(bytes, count);
    if (length !== undefined) return wrap(() => decodeSnapshotTable(bytes, count), file.name);
    if (chunk === available) {
      if (available === maxTableBytes) {
        throw new DiskError('E_TOO_LARGE', `snapshot table is larger than ${maxTableBytes} bytes`, { file: file.name, offset });
      }
      throw new DiskError('E_PAST_EOF', `snapshot table (${count} entries) runs past the end of the file`, { file: file.name, offset });
    }
    chunk = Math.min(chunk * 4, available);
  }
}

function wrap<T>(decode: () => T, name: string): T {
  try {
    return decode();
  } catch (error) {
    throw isDiskError(error) ? error.withFile(name) : error;
  }
}
