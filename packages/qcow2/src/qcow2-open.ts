import type { BackingOpener } from '@q/backing';
import {
  compressionTypeOf,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  type MetadataLimits,
  type SnapshotEntry,
} from '@q/format';
import type { ClusterMapper } from '@q/mapper';
import { DiskError, isDiskError, type BlockDevice, type BlockFile } from '@q/raw';
import { findSnapshot, findSnapshotBy, readSnapshotL1, snapshotDiskSize } from '@q/snapshots';
import type { Codecs } from './codecs.js';
import { DEFAULT_CODECS } from './default-codecs.js';
import { CompressedReader } from './compressed-reader.js';
import { readImageMetadata, type ImageMetadata } from './image-metadata.js';
import { TrackedFile } from './tracked-file.js';
import { mappingParts, writableParts, type WritableParts } from './writable-parts.js';
import type { Qcow2Image } from './qcow2-image.js';

/** Default L2 cache budget: 4 MiB of tables maps 32 GiB of a 64 KiB-cluster image (QEMU's default maps 8 GiB). */
export const DEFAULT_L2_CACHE_BYTES = 4 * 1024 * 1024;
const DEFAULT_REFCOUNT_CACHE_BYTES = 1024 * 1024;

export interface Qcow2OpenOptions {
  /** Name for errors and listings; default: the file's name. */
  name?: string;
  /** Open for writing (the file must be writable). Snapshots and corrupt images open read-only only. */
  writable?: boolean;
  /**
   * Decompressors (`nodeCodecs` from `@q/qcow2/node`, `portableCodecs` from `@q/qcow2/portable`); default: the
   * portable ones, loaded when first needed.
   */
  codecs?: Codecs;
  /** Opens the backing file the image names; required when it names one, unless `ignoreBacking`. */
  openBacking?: BackingOpener;
  /** Open without the backing file (as `qemu-img info` does): unallocated ranges read as zeros. */
  ignoreBacking?: boolean;
  /** Opens the external data file (its name as the image records it, or as `dataFile` overrides it). */
  openDataFile?: (name: string, writable: boolean) => Promise<BlockFile>;
  /** Use this data file name instead of the one recorded in the image. */
  dataFile?: string;
  /** Open a snapshot's state, read-only: an id or name (id first, as qemu-img), or an exact key. */
  snapshot?: string | { id?: string; name?: string };
  /** Bytes of L2 tables to cache. */
  l2CacheBytes?: number;
  /**
   * Repairs a dirty image (lazy refcounts, after a crash) before a read-write open, as QEMU does: rebuilds the
   * refcounts and clears the dirty bit (`@q/check`'s `checkImage` with `repair: 'all'`). Without it a dirty image
   * opens read-only only.
   */
  repairDirty?: (file: BlockFile) => Promise<void>;
  /** How much metadata the open may load (default QEMU's limits; `UNTRUSTED_LIMITS` for images from strangers). */
  limits?: MetadataLimits;
}

/** What an open image is made of (Qcow2Image's constructor). */
export interface Qcow2ImageParts {
    name: string;
    size: number;
    file: BlockFile;
    metadata: ImageMetadata;
    backing: BlockDevice | undefined;
    dataFile: BlockFile;
    snapshot: SnapshotEntry | undefined;
    mapper: ClusterMapper;
    compressed: CompressedReader | undefined;
    writer: WritableParts | undefined;
}

/**
 * The steps from a file to an open image: metadata read and checked (a dirty image repaired first when asked),
 * the snapshot chosen, data file and backing opened, the writable parts built; `construct` makes the image from
 * its parts (its writer reads the guest through it). On failure whatever was opened is closed (`file` is not) and
 * the error names the image.
 */
export async function openQcow2Parts(file: BlockFile, options: Qcow2OpenOptions, construct: (parts: Qcow2ImageParts) => Qcow2Image): Promise<Qcow2Image> {
  const name = options.name ?? file.name;
  const writable = options.writable === true;
  const opened: Array<{ close(): Promise<void> }> = [];
  try {
    if (writable && !file.capabilities.writable) throw new DiskError('E_READ_ONLY', 'the file is not open for writing');
    if (writable && options.snapshot !== undefined) throw new DiskError('E_READ_ONLY', 'snapshots open read-only');
    let imageFile = writable ? await TrackedFile.wrap(file) : file;
    let metadata = await readImageMetadata(imageFile, options.limits);
    if (writable && options.repairDirty !== undefined && (metadata.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n) {
      // The refcounts may be stale: repair them before anything is allocated, then read the repaired image.
      await options.repairDirty(file);
      imageFile = await TrackedFile.wrap(file);
      metadata = await readImageMetadata(imageFile, options.limits);
    }
    const { header, geometry } = metadata;
    if (writable) checkWritableState(metadata);
    let l1Bytes = metadata.activeL1;
    let l1Offset = writable ? header.l1TableOffset : 0;
    let size = header.size;
    let snapshot: SnapshotEntry | undefined;
    if (options.snapshot !== undefined) {
      const wanted = options.snapshot;
      snapshot = typeof wanted === 'string' ? findSnapshot(metadata.snapshots, wanted) : findSnapshotBy(metadata.snapshots, wanted);
      if (snapshot === undefined) {
        const label = typeof wanted === 'string' ? wanted : (wanted.name ?? wanted.id ?? '');
        throw new DiskError('E_NO_SUCH', `Can't find snapshot '${label}'`);
      }
      l1Bytes = await readSnapshotL1(imageFile, snapshot, geometry, metadata.fileSize, options.limits?.l1TableBytes);
      l1Offset = 0;
      size = snapshotDiskSize(snapshot, header.size);
    }
    let dataFile: BlockFile = imageFile;
    if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n) {
      const dataFileName = options.dataFile ?? metadata.extensions.dataFile;
      if (dataFileName === undefined) throw new DiskError('E_INVALID', "'data-file' is required for this image");
      if (options.openDataFile === undefined) throw new DiskError('E_UNSUPPORTED', 'no way to open the external data file was provided');
      const dataFileHandle = await options.openDataFile(dataFileName, writable);
      opened.push(dataFileHandle);
      // Writers track what the data file has not synced yet (data goes to disk before tables naming it).
      dataFile = writable ? await TrackedFile.wrap(dataFileHandle) : dataFileHandle;
    }
    let backing: BlockDevice | undefined;
    if (metadata.backingFileName !== undefined && options.ignoreBacking !== true) {
      if (options.openBacking === undefined) throw new DiskError('E_UNSUPPORTED', 'no way to open the backing file was provided');
      backing = await options.openBacking(metadata.backingFileName, metadata.extensions.backingFormat);
      opened.push(backing);
    }
    const mapping = mappingParts(imageFile, metadata, l1Bytes, l1Offset, { name, l2CacheBytes: options.l2CacheBytes ?? DEFAULT_L2_CACHE_BYTES });
    const codec = (options.codecs ?? DEFAULT_CODECS)[compressionTypeOf(header)];
    const compressed = codec === undefined ? undefined : new CompressedReader(imageFile, codec, geometry.clusterSize);
    let image: Qcow2Image | undefined;
    const writer = writable
      ? await writableParts({
          file: imageFile as TrackedFile,
          dataFile: dataFile as TrackedFile,
          metadata,
          mapping,
          backing,
          readGuest: (dst, offset) => image!.read(dst, offset),
          virtualSize: () => image!.size,
          refcountCacheBytes: DEFAULT_REFCOUNT_CACHE_BYTES,
        })
      : undefined;
    image = construct({ name, size, file: imageFile, metadata, backing, dataFile, snapshot, mapper: mapping.mapper, compressed, writer });
    return image;
  } catch (error) {
    await Promise.allSettled(opened.map((part) => part.close()));
    throw attribute(error, name);
  }
}

/** States in which QEMU refuses a read-write open, and so do we. */
function checkWritableState(metadata: ImageMetadata): void {
  const { header } = metadata;
  if ((header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n) {
    throw new DiskError('E_READ_ONLY', 'the image is marked corrupt: it can only be opened read-only (qcow check -r all repairs it)');
  }
  if ((header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n) {
    throw new DiskError('E_UNSUPPORTED', 'the image is dirty (a crash with lazy refcounts) and was not repaired: run qcow check -r all');
  }
}

/** The error, naming the image when it is one of ours. */
export function attribute(error: unknown, name: string): unknown {
  return isDiskError(error) ? error.withFile(name) : error;
}
