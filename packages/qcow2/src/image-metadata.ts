import {
  AUTOCLEAR_BITMAPS,
  checkIncompatibleFeatures,
  decodeBackingFileName,
  decodeBitmapDirectory,
  decodeHeader,
  decodeHeaderExtensions,
  geometryOf,
  l1EntriesFor,
  HEADER_PROBE_BYTES,
  hasQcowMagic,
  QEMU_LIMITS,
  type MetadataLimits,
  snapshotEntrySize,
  readHeaderField,
  type BitmapEntry,
  type Geometry,
  type HeaderExtensions,
  type QcowHeader,
  type SnapshotEntry,
} from '@q/format';
import { MetadataRegions } from '@q/mapper';
import { readSnapshotTable } from '@q/snapshots';
import { DiskError, readExact, type BlockFile } from '@q/raw';

/** Everything read from an image's fixed metadata at open time; tables reached through L1/L2 come later. */
export interface ImageMetadata {
  fileSize: number;
  header: QcowHeader;
  extensions: HeaderExtensions;
  geometry: Geometry;
  backingFileName: string | undefined;
  activeL1: Uint8Array;
  snapshots: SnapshotEntry[];
  /** Persistent bitmaps, when the bitmaps extension is present and consistent (autoclear bit set). */
  bitmaps: BitmapEntry[] | undefined;
  /** The fixed metadata clusters (header, active L1, refcount table, snapshot table), for overlap checks. */
  regions: MetadataRegions;
}

/**
 * Reads and checks the header, extensions, active L1 table, snapshot table and bitmap directory. Every table is
 * checked against QEMU's limits before it is allocated and against the file size before it is read: a table
 * past the end of the file is an error here, where QEMU would read zeros.
 */
export async function readImageMetadata(file: BlockFile, limits: MetadataLimits = QEMU_LIMITS): Promise<ImageMetadata> {
  const fileSize = await file.size();
  const probe = new Uint8Array(Math.min(fileSize, HEADER_PROBE_BYTES));
  await readExact(file, probe, 0, 'header');
  if (!hasQcowMagic(probe)) throw new DiskError('E_BAD_FORMAT', 'Image is not in qcow2 format');
  // The header, its extensions and the backing file name all live in cluster 0; read it whole once.
  const clusterBits = readHeaderField(probe, 'clusterBits') ?? 0;
  const cluster0 = new Uint8Array(Math.min(fileSize, clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : 512));
  await readExact(file, cluster0, 0, 'header');
  const header = decodeHeader(cluster0);
  // Every image has its header cluster and at least a refcount table after it: a shorter file was cut.
  if (fileSize < 2 ** header.clusterBits) {
    throw new DiskError('E_PAST_EOF', `file is truncated: ${fileSize} bytes, less than one ${2 ** header.clusterBits}-byte cluster`);
  }
  checkLimits(header, geometryOf(header).clusterSize, limits);
  const extensions = decodeHeaderExtensions(cluster0, header);
  checkIncompatibleFeatures(header, extensions.featureNames);
  const backingFileName = decodeBackingFileName(cluster0, header);
  const geometry = geometryOf(header);

  const neededL1 = l1EntriesFor(header.size, geometry);
  if (header.l1Size < neededL1) {
    throw new DiskError('E_CORRUPT', `L1 table is too small (${header.l1Size} of the ${neededL1} entries the disk size needs)`);
  }
  const l1Bytes = header.l1Size * 8;
  checkInsideFile(header.l1TableOffset, l1Bytes, fileSize, 'L1 table');
  const refcountTableBytes = header.refcountTableClusters * geometry.clusterSize;
  checkInsideFile(header.refcountTableOffset, refcountTableBytes, fileSize, 'refcount table');
  const activeL1 = new Uint8Array(l1Bytes);
  if (l1Bytes > 0) await readExact(file, activeL1, header.l1TableOffset, 'L1 table');

  const snapshots = await readSnapshotTable(file, header.snapshotsOffset, header.nbSnapshots, fileSize, limits.snapshotTableBytes);
  const bitmaps = await readBitmaps(file, header, extensions, geometry, fileSize, limits);

  const regions = new MetadataRegions(geometry.clusterSize);
  regions.add(0, geometry.clusterSize, 'image header');
  regions.add(header.l1TableOffset, l1Bytes, 'active L1 table');
  regions.add(header.refcountTableOffset, refcountTableBytes, 'refcount table');
  if (header.nbSnapshots > 0) {
    const tableBytes = snapshots.reduce((sum, entry) => sum + snapshotEntrySize(entry), 0);
    regions.add(header.snapshotsOffset, tableBytes, 'snapshot table');
  }
  return { fileSize, header, extensions, geometry, backingFileName, activeL1, snapshots, bitmaps, regions };
}

/** The header's tables against `limits` (decodeHeader has checked QEMU's own; untrusted images get tighter ones). */
function checkLimits(header: QcowHeader, clusterSize: number, limits: MetadataLimits): void {
  const over = (what: string, value: number, limit: number): void => {
    if (value > limit) throw new DiskError('E_TOO_LARGE', `${what} too large (${value}, at most ${limit} for this open)`);
  };
  over('Active L1 table (bytes)', header.l1Size * 8, limits.l1TableBytes);
  over('Refcount table (bytes)', header.refcountTableClusters * clusterSize, limits.refcountTableBytes);
  over('Snapshot count', header.nbSnapshots, limits.snapshots);
}

function checkInsideFile(offset: number, length: number, fileSize: number, what: string): void {
  if (length > 0 && offset + length > fileSize) {
    throw new DiskError('E_PAST_EOF', `${what} at offset ${offset} (${length} bytes) runs past the end of the file (${fileSize} bytes)`, {
      offset,
    });
  }
}

async function readBitmaps(
  file: BlockFile,
  header: QcowHeader,
  extensions: HeaderExtensions,
  geometry: Geometry,
  fileSize: number,
  limits: MetadataLimits,
): Promise<BitmapEntry[] | undefined> {
  const ext = extensions.bitmaps;
  // Without the autoclear bit, a program that does not know bitmaps wrote the image: they are stale; ignore them.
  if (ext === undefined || (header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n) return undefined;
  if (ext.directoryOffset % geometry.clusterSize !== 0 || ext.directoryOffset === 0) {
    throw new DiskError('E_CORRUPT', `bitmap directory offset ${ext.directoryOffset} is invalid`);
  }
  if (ext.nbBitmaps > limits.bitmaps || ext.directorySize > limits.bitmapDirectoryBytes) {
    throw new DiskError('E_TOO_LARGE', `bitmap directory too large (${ext.nbBitmaps} bitmaps, ${ext.directorySize} bytes) for this open`);
  }
  checkInsideFile(ext.directoryOffset, ext.directorySize, fileSize, 'bitmap directory');
  const directory = new Uint8Array(ext.directorySize);
  await readExact(file, directory, ext.directoryOffset, 'bitmap directory');
  return decodeBitmapDirectory(directory, ext.nbBitmaps);
}
