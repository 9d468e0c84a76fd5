import {
  AUTOCLEAR_BITMAPS,
  MAX_SNAPSHOT_TABLE_BYTES,
  checkIncompatibleFeatures,
  decodeBitmapDirectory,
  decodeHeader,
  decodeHeaderExtensions,
  decodeSnapshotTable,
  geometryOf,
  hasQcowMagic,
  l1EntriesFor,
  measureSnapshotTable,
  view,
  type BitmapEntry,
  type Geometry,
  type HeaderExtensions,
  type QcowHeader,
  type SnapshotEntry,
} from '@q/format';
import { DiskError, readExact, readPadded, type BlockFile } from '@q/raw';

/**
 * What the check starts from: the header and the fixed tables it names. Unlike the engine, which refuses tables
 * that run past the end of the file, the check reads them as QEMU does (missing bytes are zeros) and reports
 * the references past the end as refcount errors, so `qcow check` and `qemu-img check` agree on such images.
 * What QEMU refuses to open, this refuses too (a DiskError; the check exits 1).
 */
export interface ImageLayout {
  file: BlockFile;
  fileSize: number;
  header: QcowHeader;
  geometry: Geometry;
  extensions: HeaderExtensions;
  snapshots: SnapshotEntry[];
  /** Bytes of the snapshot table: its entries, each padded to 8 bytes. */
  snapshotTableBytes: number;
  /** The bitmap directory, when the bitmaps extension is present and valid (autoclear bit set). */
  bitmaps: { offset: number; size: number; entries: BitmapEntry[] } | undefined;
}

/** Reads and validates the header, its extensions, the snapshot table and the bitmap directory. */
export async function readImageLayout(file: BlockFile): Promise<ImageLayout> {
  const fileSize = await file.size();
  const probe = new Uint8Array(Math.min(fileSize, 512));
  await readExact(file, probe, 0, 'header');
  if (!hasQcowMagic(probe)) throw new DiskError('E_BAD_FORMAT', 'Image is not in qcow2 format', { file: file.name });
  const clusterBits = probe.length >= 24 ? view(probe).getUint32(20) : 0;
  const cluster0 = new Uint8Array(Math.min(fileSize, clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : 512));
  await readExact(file, cluster0, 0, 'header');
  const header = named(file, () => decodeHeader(cluster0));
  const extensions = named(file, () => decodeHeaderExtensions(cluster0, header));
  named(file, () => checkIncompatibleFeatures(header, extensions.featureNames));
  const geometry = geometryOf(header);
  const needed = l1EntriesFor(header.size, geometry);
  if (header.l1Size < needed) {
    throw new DiskError('E_CORRUPT', `L1 table is too small (${header.l1Size} of the ${needed} entries the disk size needs)`, { file: file.name });
  }
  const { snapshots, bytes } = await readSnapshots(file, header);
  const bitmaps = await readBitmapDirectory(file, header, extensions, geometry);
  return { file, fileSize, header, geometry, extensions, snapshots, snapshotTableBytes: bytes, bitmaps };
}

/**
 * The snapshot table, read in growing pieces so a lying count costs no more than the table limit. Bytes past
 * the end of the file read as zeros, as in QEMU (such entries then describe empty snapshots).
 */
async function readSnapshots(file: BlockFile, header: QcowHeader): Promise<{ snapshots: SnapshotEntry[]; bytes: number }> {
  const count = header.nbSnapshots;
  if (count === 0) return { snapshots: [], bytes: 0 };
  let chunk = Math.min(64 * 1024, MAX_SNAPSHOT_TABLE_BYTES);
  for (;;) {
    const bytes = new Uint8Array(chunk);
    await readPadded(file, bytes, header.snapshotsOffset);
    const length = measureSnapshotTable(bytes, count);
    if (length !== undefined) return { snapshots: named(file, () => decodeSnapshotTable(bytes, count)), bytes: length };
    if (chunk >= MAX_SNAPSHOT_TABLE_BYTES) {
      throw new DiskError('E_TOO_LARGE', `snapshot table is larger than ${MAX_SNAPSHOT_TABLE_BYTES} bytes`, { file: file.name });
    }
    chunk = Math.min(chunk * 4, MAX_SNAPSHOT_TABLE_BYTES);
  }
}

/**
 * The bitmap directory. QEMU ignores the extension when the autoclear bit is clear (a program without bitmap
 * support wrote the image, so the bitmaps are stale and their clusters count as leaks), and refuses to open an
 * image whose directory is unusable.
 */
async function readBitmapDirectory(
  file: BlockFile,
  header: QcowHeader,
  extensions: HeaderExtensions,
  geometry: Geometry,
): Promise<ImageLayout['bitmaps']> {
  const ext = extensions.bitmaps;
  if (ext === undefined || (header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n) return undefined;
  if (ext.directoryOffset === 0 || ext.directoryOffset % geometry.clusterSize !== 0) {
    throw new DiskError('E_CORRUPT', `Invalid bitmap directory offset 0x${ext.directoryOffset.toString(16)}`, { file: file.name });
  }
  const directory = new Uint8Array(ext.directorySize);
  await readExact(file, directory, ext.directoryOffset, 'bitmap directory');
  const entries = named(file, () => decodeBitmapDirectory(directory, ext.nbBitmaps));
  for (const entry of entries) {
    if (entry.tableSize === 0 || entry.tableOffset === 0 || entry.tableOffset % geometry.clusterSize !== 0) {
      throw new DiskError('E_CORRUPT', `Bitmap '${entry.name}' has an invalid bitmap table (offset 0x${entry.tableOffset.toString(16)}, ${entry.tableSize} entries)`, {
        file: file.name,
      });
    }
  }
  return { offset: ext.directoryOffset, size: ext.directorySize, entries };
}

/** Runs a decoder and attributes its error to the file. */
function named<T>(file: BlockFile, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw error instanceof DiskError ? error.withFile(file.name) : error;
  }
}
