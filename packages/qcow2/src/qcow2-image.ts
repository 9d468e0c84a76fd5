import type { BackingOpener } from '@q/backing';
import { TableCache } from '@q/cache';
import { compressionTypeOf, INCOMPAT_DATA_FILE, type CompressionType, type SnapshotEntry } from '@q/format';
import { ClusterMapper, type CompressedExtent, type MapExtent } from '@q/mapper';
import { DiskError, checkRange, readExact, readPadded, type BlockDevice, type BlockFile, type BlockStatus } from '@q/raw';
import { findSnapshot, findSnapshotBy, readSnapshotL1, snapshotDiskSize } from '@q/snapshots';
import type { Codecs } from './codecs.js';
import { CompressedReader, type CompressedPart } from './compressed-reader.js';
import { readImageMetadata, type ImageMetadata } from './image-metadata.js';

/** Default L2 cache budget: 4 MiB of tables maps 32 GiB of a 64 KiB-cluster image (QEMU's default maps 8 GiB). */
export const DEFAULT_L2_CACHE_BYTES = 4 * 1024 * 1024;

export interface Qcow2OpenOptions {
  /** Name for errors and listings; default: the file's name. */
  name?: string;
  /** Decompressors (see `nodeCodecs` in `@q/qcow2/node` and `portableCodecs`). */
  codecs?: Codecs;
  /** Opens the backing file the image names; required when it names one, unless `ignoreBacking`. */
  openBacking?: BackingOpener;
  /** Open without the backing file (as `qemu-img info` does): unallocated ranges read as zeros. */
  ignoreBacking?: boolean;
  /** Opens the external data file (its name as the image records it, or as `dataFile` overrides it). */
  openDataFile?: (name: string) => Promise<BlockFile>;
  /** Use this data file name instead of the one recorded in the image. */
  dataFile?: string;
  /** Open a snapshot's state, read-only: an id or name (id first, as qemu-img), or an exact key. */
  snapshot?: string | { id?: string; name?: string };
  /** Bytes of L2 tables to cache. */
  l2CacheBytes?: number;
}

/**
 * An open qcow2 image: a BlockDevice whose bytes come from its clusters, its backing device (for ranges it leaves
 * unallocated) or zeros. Reading never writes: a dirty or corrupt image is read as it stands.
 */
export class Qcow2Image implements BlockDevice {
  readonly format = 'qcow2';
  readonly readOnly = true;
  readonly name: string;
  readonly size: number;
  readonly file: BlockFile;
  readonly metadata: ImageMetadata;
  readonly backing: BlockDevice | undefined;
  /** The file guest clusters live in: the image itself, or its external data file. */
  readonly dataFile: BlockFile;
  /** The snapshot this device shows, when opened at one. */
  readonly snapshot: SnapshotEntry | undefined;
  private readonly mapper: ClusterMapper;
  private readonly compressed: CompressedReader | undefined;

  get compressionType(): CompressionType {
    return compressionTypeOf(this.metadata.header);
  }

  private constructor(parts: {
    name: string;
    size: number;
    file: BlockFile;
    metadata: ImageMetadata;
    backing: BlockDevice | undefined;
    dataFile: BlockFile;
    snapshot: SnapshotEntry | undefined;
    mapper: ClusterMapper;
    compressed: CompressedReader | undefined;
  }) {
    this.name = parts.name;
    this.size = parts.size;
    this.file = parts.file;
    this.metadata = parts.metadata;
    this.backing = parts.backing;
    this.dataFile = parts.dataFile;
    this.snapshot = parts.snapshot;
    this.mapper = parts.mapper;
    this.compressed = parts.compressed;
  }

  /** Opens the image in `file`. On failure whatever it opened (backing, data file) is closed; `file` is not. */
  static async open(file: BlockFile, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const name = options.name ?? file.name;
    const opened: Array<{ close(): Promise<void> }> = [];
    try {
      const metadata = await readImageMetadata(file);
      const { header, geometry } = metadata;
      let l1Table = metadata.activeL1;
      let size = header.size;
      let snapshot: SnapshotEntry | undefined;
      if (options.snapshot !== undefined) {
        const wanted = options.snapshot;
        snapshot = typeof wanted === 'string' ? findSnapshot(metadata.snapshots, wanted) : findSnapshotBy(metadata.snapshots, wanted);
        if (snapshot === undefined) {
          const label = typeof wanted === 'string' ? wanted : (wanted.name ?? wanted.id ?? '');
          throw new DiskError('E_NO_SUCH', `Can't find snapshot '${label}'`);
        }
        l1Table = await readSnapshotL1(file, snapshot, geometry, metadata.fileSize);
        size = snapshotDiskSize(snapshot, header.size);
      }
      let dataFile = file;
      if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n) {
        const dataFileName = options.dataFile ?? metadata.extensions.dataFile;
        if (dataFileName === undefined) throw new DiskError('E_INVALID', "'data-file' is required for this image");
        if (options.openDataFile === undefined) throw new DiskError('E_UNSUPPORTED', 'no way to open the external data file was provided');
        dataFile = await options.openDataFile(dataFileName);
        opened.push(dataFile);
      }
      let backing: BlockDevice | undefined;
      if (metadata.backingFileName !== undefined && options.ignoreBacking !== true) {
        if (options.openBacking === undefined) throw new DiskError('E_UNSUPPORTED', 'no way to open the backing file was provided');
        backing = await options.openBacking(metadata.backingFileName, metadata.extensions.backingFormat);
        opened.push(backing);
      }
      const l2Cache = new TableCache({
        budgetBytes: options.l2CacheBytes ?? DEFAULT_L2_CACHE_BYTES,
        tableBytes: geometry.clusterSize,
        load: async (offset) => {
          const table = new Uint8Array(geometry.clusterSize);
          await readExact(file, table, offset, 'L2 table');
          return table;
        },
      });
      const mapper = new ClusterMapper({
        geometry,
        l1Table,
        l2Cache,
        imageFileSize: metadata.fileSize,
        reserved: metadata.reserved,
        name,
      });
      const codec = options.codecs?.[compressionTypeOf(header)];
      const compressed = codec === undefined ? undefined : new CompressedReader(file, codec, geometry.clusterSize);
      return new Qcow2Image({ name, size, file, metadata, backing, dataFile, snapshot, mapper, compressed });
    } catch (error) {
      await Promise.allSettled(opened.map((part) => part.close()));
      throw attribute(error, name);
    }
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    if (dst.length === 0) return;
    try {
      const extents = await this.mapper.map(offset, dst.length);
      const pending: Promise<void>[] = [];
      const compressed: CompressedPart[] = [];
      for (const extent of extents) {
        const part = dst.subarray(extent.guestOffset - offset, extent.guestOffset - offset + extent.length);
        if (extent.kind === 'compressed') compressed.push({ dst: part, extent });
        else this.readExtent(part, extent, pending);
      }
      if (compressed.length > 0) pending.push(this.compressedReader().read(compressed));
      await Promise.all(pending);
    } catch (error) {
      throw attribute(error, this.name);
    }
  }

  /** The mapping of `[offset, offset + length)` as the mapper sees it (for tools that want host offsets). */
  map(offset: number, length: number): Promise<MapExtent[]> {
    checkRange(this, offset, Math.min(length, this.size - offset));
    return this.mapper.map(offset, Math.min(length, this.size - offset)).catch((error: unknown) => {
      throw attribute(error, this.name);
    });
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return [];
    const hostFile = this.dataFile.name;
    return (await this.map(offset, end - offset)).map((extent): BlockStatus => {
      switch (extent.kind) {
        case 'data':
          return { offset: extent.guestOffset, length: extent.length, kind: 'data', hostOffset: extent.hostOffset, hostFile };
        case 'compressed':
          return { offset: extent.guestOffset, length: extent.length, kind: 'data', compressed: true };
        case 'zero':
          return extent.hostOffset === undefined
            ? { offset: extent.guestOffset, length: extent.length, kind: 'zero' }
            : { offset: extent.guestOffset, length: extent.length, kind: 'zero', hostOffset: extent.hostOffset, hostFile };
        case 'unallocated':
          return extent.hostOffset === undefined
            ? { offset: extent.guestOffset, length: extent.length, kind: 'unallocated' }
            : { offset: extent.guestOffset, length: extent.length, kind: 'unallocated', hostOffset: extent.hostOffset, hostFile };
      }
    });
  }

  async close(): Promise<void> {
    const parts: Array<{ close(): Promise<void> }> = [this.file];
    if (this.dataFile !== this.file) parts.push(this.dataFile);
    if (this.backing !== undefined) parts.push(this.backing);
    const results = await Promise.allSettled(parts.map((part) => part.close()));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  private readExtent(part: Uint8Array, extent: Exclude<MapExtent, CompressedExtent>, pending: Promise<void>[]): void {
    switch (extent.kind) {
      case 'data':
        // A data cluster may be the file's last, short cluster: what is missing reads as zeros.
        pending.push(readPadded(this.dataFile, part, extent.hostOffset));
        return;
      case 'zero':
        part.fill(0);
        return;
      case 'unallocated':
        pending.push(this.readBelow(part, extent.guestOffset));
        return;
    }
  }

  private compressedReader(): CompressedReader {
    if (this.compressed === undefined) {
      const type = this.compressionType;
      throw new DiskError('E_UNSUPPORTED', `the image has ${type} compressed clusters but no ${type} decompressor was provided`);
    }
    return this.compressed;
  }

  /** Bytes this layer leaves unallocated: from the backing device, zeros past its end or when there is none. */
  private async readBelow(part: Uint8Array, guestOffset: number): Promise<void> {
    const backing = this.backing;
    const fromBacking = backing === undefined ? 0 : Math.max(0, Math.min(part.length, backing.size - guestOffset));
    if (fromBacking > 0) await backing!.read(part.subarray(0, fromBacking), guestOffset);
    if (fromBacking < part.length) part.fill(0, fromBacking);
  }
}

function attribute(error: unknown, name: string): unknown {
  return error instanceof DiskError ? error.withFile(name) : error;
}

