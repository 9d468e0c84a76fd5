import { AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW, compressionTypeOf, type CompressionType, type SnapshotEntry } from '@q/format';
import type { ClusterMapper, MapExtent } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import { DiskError, checkRange, checkWritable, type BlockDevice, type BlockFile, type BlockStatus, type WriteZeroesOptions } from '@q/raw';
import { findSnapshot } from '@q/snapshots';
import type { DirtyBitmap, DirtyExtent } from '@q/bitmaps';
import { ImageBlockStatus } from './block-status.js';
import { BitmapViews, type BitmapInfo } from './bitmap-views.js';
import { signalCorruption } from './corruption-signal.js';
import { GuestReader } from './guest-reader.js';
import type { ImageMetadata } from './image-metadata.js';
import { TrackedFile } from './tracked-file.js';
import { CompressedWriter } from './compressed-write.js';
import { makeEmpty } from './make-empty.js';
import { resizeImage } from './resize-image.js';
import { amendImage, type AmendChange, type AmendParts } from './amend.js';
import { expandZeroClusters } from './zero-cluster-expansion.js';
import { finishWrites } from './finish-writes.js';
import { applySnapshot, createSnapshot, deleteSnapshot, snapshotParts, withDirtyBit, type SnapshotParts } from './snapshot-ops.js';
import { preallocate, type Preallocation } from './preallocate.js';
import type { WritableParts } from './writable-parts.js';
import type { PersistentBitmaps } from './persistent-bitmaps.js';
import { attribute, openQcow2Parts, type Qcow2ImageParts, type Qcow2OpenOptions } from './qcow2-open.js';

/**
 * An open qcow2 image: a BlockDevice whose bytes come from its clusters, its backing device (for ranges it leaves
 * unallocated) or zeros. Opened read-only it never writes a byte, not even a header bit; opened writable it
 * allocates, copies on write and keeps the crash-consistency contract of DESIGN.md.
 */
export class Qcow2Image implements BlockDevice {
  readonly format = 'qcow2';
  readonly name: string;
  readonly file: BlockFile;
  readonly metadata: ImageMetadata;
  readonly backing: BlockDevice | undefined;
  /** The file guest clusters live in: the image itself, or its external data file. */
  readonly dataFile: BlockFile;
  /** The snapshot this device shows, when opened at one. */
  readonly snapshot: SnapshotEntry | undefined;
  private readonly mapper: ClusterMapper;
  private readonly reader: GuestReader;
  private readonly writer: WritableParts | undefined;
  private readonly status: ImageBlockStatus;
  private readonly bitmapViews: BitmapViews;
  private virtualSize: number;
  private compressedWriter: CompressedWriter | undefined;
  private prepared: Promise<void> | undefined;

  private constructor(parts: Qcow2ImageParts) {
    this.name = parts.name;
    this.virtualSize = parts.size;
    this.file = parts.file;
    this.metadata = parts.metadata;
    this.backing = parts.backing;
    this.dataFile = parts.dataFile;
    this.snapshot = parts.snapshot;
    this.mapper = parts.mapper;
    const compressionType = compressionTypeOf(parts.metadata.header);
    this.reader = new GuestReader({ mapper: parts.mapper, dataFile: parts.dataFile, compressed: parts.compressed, compressionType, backing: parts.backing });
    const writer = (this.writer = parts.writer);
    const withRefcounts = writer && (<T>(use: (store: RefcountStore) => Promise<T>) => writer.lock.run(() => use(writer.refcounts)));
    this.status = new ImageBlockStatus({ file: parts.file, dataFile: parts.dataFile, metadata: parts.metadata, withRefcounts });
    this.bitmapViews = new BitmapViews(parts.file, parts.metadata, parts.name, (name) => writer?.bitmaps?.live(name));
  }

  get size(): number {
    return this.virtualSize;
  }

  get readOnly(): boolean {
    return this.writer === undefined || this.writer.header.corrupt;
  }

  get compressionType(): CompressionType {
    return compressionTypeOf(this.metadata.header);
  }

  /** Opens the image in `file`. On failure whatever it opened (backing, data file) is closed; `file` is not. */
  static open(file: BlockFile, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    return openQcow2Parts(file, options, (parts) => new Qcow2Image(parts));
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    if (dst.length === 0) return;
    try {
      await this.reader.read(dst, offset);
    } catch (error) {
      throw await signalCorruption(this.writer?.header, this.file, attribute(error, this.name));
    }
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    const writer = this.writable(offset, src.length);
    if (src.length === 0) return;
    await this.changing(() => {
      writer.bitmaps.markDirty(offset, src.length);
      return writer.writePath.write(src, offset);
    });
  }

  /**
   * Stores the guest cluster at `offset` (cluster aligned; the disk's last cluster may be cut short by its end) as
   * `compressed`: one stream of the image's compression type that decompresses to the whole cluster, a short last
   * one padded with zeros as QEMU pads it (`nodeCompressor` in `@q/qcow2/node` makes them). Consecutive calls pack
   * their data into shared host clusters, as QEMU does (compressed-write.ts).
   */
  async writeCompressed(offset: number, compressed: Uint8Array): Promise<void> {
    const { clusterSize } = this.metadata.geometry;
    const writer = this.writable(offset, Math.min(clusterSize, this.size - offset));
    if (offset % clusterSize !== 0) throw new DiskError('E_INVALID', `compressed writes take whole clusters; ${offset} is not cluster aligned`, { file: this.name, offset });
    this.compressedWriter ??= new CompressedWriter(writer.writePath);
    const compressedWriter = this.compressedWriter;
    await this.changing(() => {
      writer.bitmaps.markDirty(offset, clusterSize);
      return compressedWriter.write(offset / clusterSize, compressed);
    });
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    const writer = this.writable(offset, length);
    if (length === 0) return;
    const slow = options.fast === true ? await writer.zeroPath.whyNotFast(offset, length) : undefined;
    if (slow !== undefined) throw new DiskError('E_UNSUPPORTED', `zeroing would write data: ${slow}`, { file: this.name, offset });
    await this.changing(() => {
      writer.bitmaps.markDirty(offset, length);
      return writer.zeroPath.writeZeroes(offset, length, options.unmap === true);
    });
  }

  async discard(offset: number, length: number): Promise<void> {
    const writer = this.writable(offset, length);
    if (length === 0) return;
    await this.changing(() => {
      writer.bitmaps.markDirty(offset, length);
      return writer.zeroPath.discard(offset, length);
    });
  }

  /**
   * Changes the disk's size to `size` bytes (rounded up to 512, as qemu-img does). Growing: the new space reads
   * as zeros, or from the backing file where it is long enough, or is allocated with `preallocation`. Shrinking
   * (shrink-disk.ts) releases every cluster past the new end; what lay there is gone.
   */
  async resize(size: number, options: { preallocation?: Preallocation } = {}): Promise<void> {
    checkWritable(this);
    const target = Math.ceil(size / 512) * 512;
    const old = this.virtualSize;
    const parts = { writer: this.writer!, file: this.file as TrackedFile, dataFile: this.dataFile, metadata: this.metadata, mapper: this.mapper };
    await this.changing(() => resizeImage({ ...parts, setSize: (next) => (this.virtualSize = next) }, old, target, options.preallocation ?? 'off'));
  }

  /** Allocates every cluster of the disk (`qemu-img create -o preallocation=`); for freshly created images. */
  async preallocate(mode: Preallocation): Promise<void> {
    checkWritable(this);
    const writer = this.writer!;
    await this.changing(() =>
      writer.lock.run(() =>
        preallocate(
          { file: this.file as TrackedFile, dataFile: this.dataFile, geometry: this.metadata.geometry, mapper: this.mapper, l2Writer: writer.l2Writer, refcounts: writer.refcounts },
          this.virtualSize,
          mode,
        ),
      ),
    );
  }

  async flush(): Promise<void> {
    if (this.writer === undefined) return;
    await this.changing(() => this.writer!.writePath.flush(), false);
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
    return this.status.of(await this.map(offset, end - offset));
  }

  /**
   * Records a new backing file name and format in the header, or none (`name` undefined). Only the header changes
   * (qemu-img rebase -u); keeping the guest's bytes the same is the caller's work, done before this. The open
   * image goes on reading through the backing device it was opened with: reopen to follow the new name.
   */
  async setBackingFile(name: string | undefined, format?: string): Promise<void> {
    const writer = this.writable(0, 0);
    await this.changing(async () => {
      // Data first: the header must never name a backing file the data written so far does not agree with.
      await writer.writePath.flush();
      await writer.lock.run(async () => {
        await writer.header.setBackingFile(name, format);
        this.metadata.backingFileName = name;
        this.metadata.extensions = { ...this.metadata.extensions, all: [...writer.header.extensions], backingFormat: name === undefined ? undefined : format };
      });
    }, false);
  }

  /**
   * Unmaps every cluster of the disk, so it reads as its backing file (or zeros): what qemu-img commit leaves in
   * the overlay it committed (make-empty.ts). Internal snapshots keep their clusters.
   */
  async makeEmpty(): Promise<void> {
    const writer = this.writable(0, 0);
    await this.changing(async () => {
      writer.bitmaps.markAllDirty();
      await writer.writePath.flush();
      await writer.lock.run(() => makeEmpty({ ...writer.resizeParts, l2Cache: writer.l2Cache, mapper: this.mapper }));
    });
  }

  /** Changes header-level options in place (qemu-img amend; the checks are the caller's): see amend.ts. */
  async amend(change: AmendChange): Promise<void> {
    const writer = this.writable(0, 0);
    const parts: AmendParts = {
      clusterSize: this.metadata.geometry.clusterSize,
      header: writer.header,
      writePath: writer.writePath,
      lock: writer.lock,
      // Already inside amend's `changing`: the tree walk alone.
      expandZeroClusters: () => this.treeOperation((tree) => expandZeroClusters(tree, this.backing !== undefined)),
    };
    // Only a downgrade writes guest clusters (zero clusters made explicit); the rest keeps the bitmaps valid.
    await this.changing(() => amendImage(parts, change), change.version === 2);
  }

  /** The persistent bitmaps the image keeps (none when its bitmaps extension is absent or stale), as qemu-img info lists them. */
  bitmaps(): BitmapInfo[] {
    return this.bitmapViews.list();
  }

  /**
   * The dirty and clean runs of bitmap `name` over `[offset, offset + length)` (clipped to the disk): the bits a
   * maintained bitmap has in memory, or a stored one's bits read from the image. An inconsistent (in_use) bitmap
   * is refused (E_INVALID), as qemu-nbd refuses to export one; an unknown name is E_NO_SUCH.
   */
  async dirtyExtents(name: string, offset: number, length: number): Promise<DirtyExtent[]> {
    return (await this.bitmapBits(name)).extents(offset, length);
  }

  /** qemu-img bitmap --add: a new, clean persistent bitmap of `granularity` bytes per bit, enabled unless `disabled`. */
  addBitmap(name: string, options: { granularity: number; disabled?: boolean }): Promise<void> {
    return this.manageBitmaps((bitmaps) => bitmaps.add(name, options.granularity, options.disabled === true));
  }

  /** qemu-img bitmap --remove. */
  removeBitmap(name: string): Promise<void> {
    return this.manageBitmaps((bitmaps) => bitmaps.remove(name));
  }

  /** qemu-img bitmap --clear. */
  clearBitmap(name: string): Promise<void> {
    return this.manageBitmaps((bitmaps) => bitmaps.clear(name));
  }

  /** qemu-img bitmap --enable / --disable. */
  setBitmapEnabled(name: string, enabled: boolean): Promise<void> {
    return this.manageBitmaps((bitmaps) => bitmaps.setEnabled(name, enabled));
  }

  /** qemu-img bitmap --merge: sets in bitmap `name` the bits of `source` (`bitmapBits` of this or another image). */
  mergeBitmap(name: string, source: DirtyBitmap): Promise<void> {
    return this.manageBitmaps((bitmaps) => bitmaps.merge(name, source));
  }

  /** A bitmap's bits: live for one this writer maintains, else read from the image (a copy to read, not change). */
  bitmapBits(name: string): Promise<DirtyBitmap> {
    return this.bitmapViews.bits(name);
  }

  /** Runs a bitmap command under the metadata lock; each commits before it returns (persistent-bitmaps.ts). */
  private async manageBitmaps(operation: (bitmaps: PersistentBitmaps) => Promise<void>): Promise<void> {
    const writer = this.writable(0, 0);
    this.bitmapViews.forget();
    await this.changing(() => writer.lock.run(() => operation(writer.bitmaps)), false);
  }

  /** The internal snapshots, in table order. */
  get snapshots(): readonly SnapshotEntry[] {
    return this.metadata.snapshots;
  }

  /** Takes an internal snapshot of the current state (qemu-img snapshot -c). */
  async createSnapshot(name: string, now = new Date()): Promise<SnapshotEntry> {
    return this.snapshotOperation((parts) => createSnapshot(parts, name, this.virtualSize, now));
  }

  /** Deletes the first snapshot named `name` (qemu-img snapshot -d looks up names only). */
  async deleteSnapshot(name: string): Promise<void> {
    const entry = this.metadata.snapshots.find((snapshot) => snapshot.name === name);
    if (entry === undefined) throw new DiskError('E_NO_SUCH', 'snapshot not found', { file: this.name });
    await this.snapshotOperation((parts) => deleteSnapshot(parts, entry));
  }

  /** Reverts the disk to a snapshot, found by id, then by name (qemu-img snapshot -a). */
  async applySnapshot(idOrName: string): Promise<void> {
    const entry = findSnapshot(this.metadata.snapshots, idOrName);
    if (entry === undefined) throw new DiskError('E_NO_SUCH', `Can't find snapshot '${idOrName}'`, { file: this.name });
    // As qemu-img 7.2: bitmaps (enabled or not) could not follow the switch, so it is refused while there are any.
    if ((this.metadata.bitmaps ?? []).length > 0) throw new DiskError('E_UNSUPPORTED', 'Device has active dirty bitmaps', { file: this.name });
    this.virtualSize = await this.snapshotOperation((parts) => applySnapshot(parts, entry, this.virtualSize));
  }

  /** Runs a snapshot operation with every write durable first, under the metadata lock and the dirty bit. */
  private async snapshotOperation<T>(operation: (parts: SnapshotParts) => Promise<T>): Promise<T> {
    const writer = this.writable(0, 0);
    if (this.metadata.geometry.externalDataFile) {
      throw new DiskError('E_UNSUPPORTED', 'internal snapshots are not supported with an external data file', { file: this.name });
    }
    let result: T | undefined;
    await this.changing(async () => {
      result = await this.treeOperation(operation);
    });
    return result as T;
  }

  /**
   * Runs an operation on the image's mapping trees (snapshot create/apply/delete, zero-cluster expansion) with every
   * write durable first, under the metadata lock and the dirty bit; readers then see the file's new end.
   */
  private async treeOperation<T>(operation: (parts: SnapshotParts) => Promise<T>): Promise<T> {
    const writer = this.writable(0, 0);
    await writer.writePath.flush();
    const parts = snapshotParts(writer, { name: this.name, metadata: this.metadata, mapper: this.mapper });
    const result = await writer.lock.run(() => withDirtyBit(parts, () => operation(parts)));
    this.mapper.imageFileSize = Math.max(this.mapper.imageFileSize, parts.file.end);
    return result;
  }

  /** Finishes a writable image's writes (finish-writes.ts), then closes the files and the backing chain. */
  async close(): Promise<void> {
    let failure: unknown;
    if (this.writer !== undefined && !this.writer.header.corrupt) {
      try {
        await finishWrites(this.writer, this.prepared !== undefined);
      } catch (error) {
        failure = attribute(error, this.name);
      }
    }
    const parts: Array<{ close(): Promise<void> }> = [this.file];
    if (this.dataFile !== this.file) parts.push(this.dataFile);
    if (this.backing !== undefined) parts.push(this.backing);
    const results = await Promise.allSettled(parts.map((part) => part.close()));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure !== undefined) throw failure;
    if (failed !== undefined) throw failed.reason;
  }

  private writable(offset: number, length: number): WritableParts {
    checkWritable(this);
    checkRange(this, offset, length);
    return this.writer!;
  }

  /**
   * Runs a change, first (once) clearing autoclear bits this writer does not maintain, setting the dirty bit with
   * lazy refcounts and marking the maintained bitmaps in_use: all reach the disk before the first byte of guest
   * data does.
   */
  private async changing(change: () => Promise<void>, prepare = true): Promise<void> {
    try {
      if (prepare) {
        this.prepared ??= this.prepareForWrites();
        await this.prepared;
        // Maintained bitmaps are in_use on disk while the disk changes (again after a bitmap command stored them).
        const bitmaps = this.writer!.bitmaps;
        if (bitmaps.needsBegin) await this.writer!.lock.run(() => bitmaps.beginChanges());
      }
      await change();
    } catch (error) {
      throw await signalCorruption(this.writer?.header, this.file, attribute(error, this.name));
    }
  }

  private async prepareForWrites(): Promise<void> {
    const { header, lazyRefcounts, lock, bitmaps } = this.writer!;
    await lock.run(async () => {
      // Bitmaps loaded at open are maintained (persistent-bitmaps.ts): their autoclear bit stays.
      const maintained = AUTOCLEAR_DATA_FILE_RAW | (bitmaps.kept ? AUTOCLEAR_BITMAPS : 0n);
      const unmaintained = header.header.autoclearFeatures & ~maintained;
      if (unmaintained !== 0n) await header.clearAutoclear(unmaintained);
      if (lazyRefcounts && !header.dirty) await header.setDirty(true);
    });
  }
}
