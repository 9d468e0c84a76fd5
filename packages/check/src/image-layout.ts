import {
  AUTOCLEAR_BITMAPS,
  BITMAP_FLAG_IN_USE,
  decodeBitmapDirectory,
  decodeHeader,
  decodeHeaderExtensions,
  geometryOf,
  hasQcowMagic,
  l1EntriesFor,
  HEADER_FIELDS,
  readHeaderField,
  type BitmapEntry,
  type Geometry,
  type HeaderExtensions,
  type QcowHeader,
} from '@q/format';
import { DiskError, isDiskError, readExact, type BlockFile } from '@q/raw';
import { bitmapTableValid } from './bitmap-table.js';
import { bigOffset, type HostOffset } from './host-offset.js';
import { checkFeatures, checkTablePlacement } from './open-checks.js';

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
  /**
   * The snapshot table fields as stored. QEMU's check validates and reads the table itself (leniently, reporting
   * what it finds), so the header decoder does not see them; `header.nbSnapshots` and `header.snapshotsOffset`
   * are 0 here.
   */
  rawSnapshotCount: number;
  rawSnapshotsOffset: HostOffset;
  /** The bitmap directory, when the bitmaps extension is present and valid (autoclear bit set). */
  bitmaps: { offset: number; size: number; entries: BitmapEntry[] } | undefined;
  /** What QEMU warns about when it opens the image (qemu-img prints these as "warning: ..."). */
  warnings: string[];
}

/** Reads and validates the header, its extensions, the snapshot table and the bitmap directory. */
export async function readImageLayout(file: BlockFile): Promise<ImageLayout> {
  const fileSize = await file.size();
  const probe = new Uint8Array(Math.min(fileSize, 512));
  await readExact(file, probe, 0, 'header');
  if (!hasQcowMagic(probe)) throw new DiskError('E_BAD_FORMAT', 'Image is not in qcow2 format', { file: file.name });
  const clusterBits = readHeaderField(probe, 'clusterBits') ?? 0;
  const cluster0 = new Uint8Array(Math.min(fileSize, clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : 512));
  await readExact(file, cluster0, 0, 'header');
  const rawSnapshotCount = readHeaderField(cluster0, 'nbSnapshots') ?? 0;
  const rawSnapshotsOffset = bigOffset(readHeaderField(cluster0, 'snapshotsOffset') ?? 0n);
  const header = named(file, () => {
    const version = readHeaderField(probe, 'version') ?? 0;
    if ((version === 2 || version === 3) && clusterBits >= 9 && clusterBits <= 21) checkTablePlacement(cluster0, 2 ** clusterBits);
    return decodeHeader(withoutSnapshotFields(cluster0));
  });
  const extensions = named(file, () => decodeHeaderExtensions(cluster0, header));
  named(file, () => checkFeatures(header, extensions.featureNames));
  const geometry = geometryOf(header);
  const needed = l1EntriesFor(header.size, geometry);
  if (header.l1Size < needed) {
    throw new DiskError('E_CORRUPT', 'L1 table is too small', { file: file.name });
  }
  const warnings: string[] = [];
  const bitmaps = await readBitmapDirectory(file, header, extensions, geometry, warnings);
  return { file, fileSize, header, geometry, extensions, rawSnapshotCount, rawSnapshotsOffset, bitmaps, warnings };
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
  warnings: string[],
): Promise<ImageLayout['bitmaps']> {
  const ext = extensions.bitmaps;
  if (ext === undefined) return undefined;
  if ((header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n) {
    warnings.push(
      'a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent\n' +
        "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.",
    );
    return undefined;
  }
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
  for (const entry of entries) {
    // QEMU loads every bitmap not marked in use when it opens the image: a table it cannot load fails the open.
    if ((entry.flags & BITMAP_FLAG_IN_USE) === 0 && !(await bitmapTableValid(file, entry, geometry.clusterSize))) {
      throw new DiskError('E_CORRUPT', `Could not read bitmap_table table from image for bitmap '${entry.name}': Invalid argument`, {
        file: file.name,
      });
    }
  }
  return { offset: ext.directoryOffset, size: ext.directorySize, entries };
}

/** The first cluster with nb_snapshots and snapshots_offset cleared, for the general header decoder. */
function withoutSnapshotFields(cluster0: Uint8Array): Uint8Array {
  const copy = cluster0.slice();
  const { nbSnapshots, snapshotsOffset } = HEADER_FIELDS;
  const end = snapshotsOffset.at + snapshotsOffset.bytes;
  if (copy.length >= end) copy.fill(0, nbSnapshots.at, end);
  return copy;
}

/** Runs a decoder and attributes its error to the file. */
function named<T>(file: BlockFile, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw isDiskError(error) ? error.withFile(file.name) : error;
  }
}
