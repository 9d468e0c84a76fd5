import { ALL_SUBCLUSTERS, encodeL2Entry, encodeRefcountTable, l1EntriesFor, maxRefcount, setRefcount, writeL1Entry, type Geometry } from '@q/format';
import { DiskError, type BlockFile } from '@q/raw';
import { checkCreateOptions, newImageHeaderCluster, type CreateOptions } from './create-image.js';
import { CompressedPacker } from './compressed-packer.js';

/** What the sequential writer can build: a fresh image with no data file and no preallocation. */
export type SequentialImageOptions = Omit<CreateOptions, 'dataFile' | 'dataFileRaw'>;

export interface SequentialWriteOptions {
  /**
   * Sync between the steps (default true), so that a crash of the machine leaves no image that lies. `false` is
   * qemu-img convert's default target cache mode, unsafe: the same writes in the same order, no sync at all (a
   * killed process still leaves no image or the whole one; a crash of the machine may leave anything).
   */
  durable?: boolean;
}

/**
 * Writes a new qcow2 image front to back, for `qemu-img convert` into a fresh file: the caller hands guest clusters
 * in increasing order (plain, compressed or zero) and the writer appends them, so the file is written once,
 * sequentially, with no allocator, no cache and no read-back.
 *
 * Layout: the header in cluster 0, the L1 table right after it, the refcount blocks and table (reserved for a bound
 * on the clusters the image can use, when that is small; else they go last), then data clusters and compressed
 * bytes in guest order, each L2 table in a cluster reserved in front of the data it maps (written once its range
 * is complete). Refcounts count everything (themselves too). Nothing is reachable until the header names the
 * tables, so the order on disk is: (emptied, sync) data and L2 tables, refcounts, (sync) L1 table, (sync) header,
 * (sync). A crash before the header leaves a file that is not an image yet, never an image that lies (the syncs
 * are left out when the caller does not ask for durability: SequentialWriteOptions).
 */
export class SequentialImageWriter {
  private readonly geometry: Geometry;
  private readonly l1: Uint8Array;
  private readonly l1Clusters: number;
  /** The L2 table being filled and the L1 index it belongs to. */
  private l2: Uint8Array | undefined;
  private l2Index = -1;
  /** Where the current L2 table goes: reserved in front of the data it maps, as QEMU places its tables. */
  private l2Host = 0;
  /** Refcount clusters reserved after the L1 table, when a bound on the image's clusters makes them few. */
  private readonly reserved: { offset: number; blocks: number; tableClusters: number } | undefined;

  /** The first free cluster of the file, as a byte offset (compressed data may fill part of the one before). */
  private end: number;
  private lastCluster = -1;
  private readonly packer: CompressedPacker;
  private finished = false;
  /** Writes issued and not landed yet. */
  private readonly inFlight = new Set<Promise<void>>();
  /** The first write that failed: the image cannot be finished. */
  private failure: { error: unknown } | undefined;

  private constructor(
    private readonly file: BlockFile,
    private readonly options: SequentialImageOptions,
    private readonly durable: boolean,
  ) {
    const clusterSize = 2 ** options.clusterBits;
    this.geometry = {
      clusterBits: options.clusterBits,
      clusterSize,
      extendedL2: options.extendedL2,
      l2EntryBytes: options.extendedL2 ? 16 : 8,
      l2Entries: clusterSize / (options.extendedL2 ? 16 : 8),
      l2Coverage: (clusterSize / (options.extendedL2 ? 16 : 8)) * clusterSize,
      subclusterSize: options.extendedL2 ? clusterSize / 32 : clusterSize,
      refcountBits: 2 ** options.refcountOrder,
      refcountBlockEntries: (clusterSize * 8) / 2 ** options.refcountOrder,
      externalDataFile: false,
    };
    const l1Entries = l1EntriesFor(options.size, this.geometry);
    // Even an empty disk gets one L1 cluster, as QEMU's do: the header never points at another table's cluster.
    this.l1Clusters = Math.max(1, Math.ceil((l1Entries * 8) / clusterSize));
    this.l1 = new Uint8Array(l1Entries * 8);
    this.end = (1 + this.l1Clusters) * clusterSize;
    // Every cluster the image can use: header, L1, each guest cluster, each L2 table. When refcounts for all of
    // them take a few clusters, they go in front (QEMU's order) and the file ends with data; else at the end.
    const bound = refcountLayout(1 + this.l1Clusters + Math.ceil(options.size / clusterSize) + l1Entries, this.geometry);
    if (bound.blocks + bound.tableClusters <= MAX_RESERVED_CLUSTERS) {
      this.reserved = { offset: this.end, ...bound };
      this.end += (bound.blocks + bound.tableClusters) * clusterSize;
    }
    this.packer = new CompressedPacker(clusterSize, maxRefcount(options.refcountOrder));
  }

  /**
   * Starts an image in `file` (emptied first). Options are checked as qemu-img create checks them.
   *
   * The emptying is synced before anything is written: over an old image, a crash could otherwise keep its header
   * (a lost truncation) along with new bytes written over its tables, an image that lies. Synced, a crash leaves
   * the old file untouched, or no image, or (after finish) the new one. An empty file is not truncated again
   * (ext4 would then write everything back when the file closes, see @q/raw's NodeBlockFile) but still synced: its
   * opener may have emptied it.
   */
  static async create(file: BlockFile, options: SequentialImageOptions, write: SequentialWriteOptions = {}): Promise<SequentialImageWriter> {
    checkCreateOptions(options);
    const durable = write.durable ?? true;
    if ((await file.size()) > 0) await file.truncate(0);
    if (durable) await file.flush();
    return new SequentialImageWriter(file, options, durable);
  }

  get clusterSize(): number {
    return this.geometry.clusterSize;
  }

  /**
   * Stores `bytes` as guest clusters `firstCluster`, `firstCluster + 1`, ... (a whole number of clusters; the
   * caller pads the disk's last one with zeros). One write for the whole run.
   *
   * Calls take effect in the order they are made, whether or not the caller waits for each: the layout is decided
   * when the call is made and the writes are issued at once, so several runs can be on their way to the file
   * together. `bytes` must stay unchanged until the returned promise settles (the write has landed).
   */
  async writeData(firstCluster: number, bytes: Uint8Array): Promise<void> {
    // No await before the writes are issued: the layout is decided while the call is made (see above).
    const { clusterSize } = this.geometry;
    const count = bytes.length / clusterSize;
    if (!Number.isInteger(count) || count < 1) throw new DiskError('E_INVALID', 'sequential writes take whole clusters');
    const writes: Promise<void>[] = [];
    for (let cluster = firstCluster; cluster < firstCluster + count; ) {
      // Whole L2 ranges at a time, so a table switch (which appends the finished table) never splits a write.
      this.enter(cluster);
      const regionEnd = Math.min(firstCluster + count, (this.l2Index + 1) * this.geometry.l2Entries);
      const host = this.end;
      for (let at = cluster; at < regionEnd; at++) this.setEntry(at, { compressed: false, compressedBytes: 0, hostOffset: host + (at - cluster) * clusterSize, copied: true, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 });
      const part = bytes.subarray((cluster - firstCluster) * clusterSize, (regionEnd - firstCluster) * clusterSize);
      writes.push(this.write(part, host));
      this.end = host + part.length;
      this.lastCluster = regionEnd - 1;
      cluster = regionEnd;
    }
    await Promise.all(writes);
  }

  /**
   * Stores guest `cluster` compressed: `compressed` is one zlib stream or zstd frame (the image's compression type)
   * that decompresses to the whole cluster. Consecutive compressed clusters share host clusters (packed byte after
   * byte, as QEMU packs them); every host cluster a cluster's bytes touch counts one reference for it.
   */
  async writeCompressed(cluster: number, compressed: Uint8Array): Promise<void> {
    // Before anything is counted: a refused stream must leave the writer as it was.
    if (compressed.length < 1 || compressed.length > this.clusterSize) {
      throw new DiskError('E_INVALID', `${compressed.length} compressed bytes do not fit one ${this.clusterSize}-byte cluster`);
    }
    this.enter(cluster);
    const host = this.packer.place(this.end, compressed.length);
    this.end = Math.max(this.end, Math.ceil((host + compressed.length) / this.clusterSize) * this.clusterSize);
    this.setEntry(cluster, { compressed: true, hostOffset: host, compressedBytes: compressed.length, copied: false, allocMask: 0, zeroMask: 0 });
    this.lastCluster = cluster;
    await this.write(compressed, host);
  }

  /** Marks guest `cluster` as reading zeros whatever lies below (the zero flag: compat 1.1 only). */
  async writeZero(cluster: number): Promise<void> {
    if (this.options.version < 3) throw new DiskError('E_UNSUPPORTED', 'zero clusters need compat 1.1');
    this.enter(cluster);
    this.setEntry(cluster, { compressed: false, compressedBytes: 0, hostOffset: 0, copied: false, allocMask: 0, zeroMask: ALL_SUBCLUSTERS });
    this.lastCluster = cluster;
  }

  /** Writes the last L2 table, the refcounts, the L1 table and the header, syncing between them (see above). */
  async finish(): Promise<void> {
    if (this.finished) throw new DiskError('E_INVALID', 'the image is already finished');
    this.finished = true;
    this.closeL2();
    // Every data and table write lands before the refcounts that count them (and a failed one stops here).
    await Promise.allSettled([...this.inFlight]);
    if (this.failure !== undefined) throw this.failure.error;
    const { clusterSize, refcountBlockEntries } = this.geometry;
    const dataClusters = this.end / clusterSize;
    const layout = this.reserved ?? { offset: this.end, ...refcountLayout(dataClusters, this.geometry) };
    const totalClusters = this.reserved === undefined ? dataClusters + layout.blocks + layout.tableClusters : dataClusters;
    // Reserved blocks beyond the ones needed stay free (refcount 0): the bound is rarely reached.
    const blocks = Math.ceil(totalClusters / refcountBlockEntries);
    const tableOffset = layout.offset + layout.blocks * clusterSize;
    const refcounts = new Uint8Array((layout.blocks + layout.tableClusters) * clusterSize);
    const blockOffsets: number[] = [];
    for (let block = 0; block < blocks; block++) {
      blockOffsets.push(layout.offset + block * clusterSize);
      const bytes = refcounts.subarray(block * clusterSize, (block + 1) * clusterSize);
      const first = block * refcountBlockEntries;
      const last = Math.min(totalClusters, first + refcountBlockEntries);
      for (let cluster = first; cluster < last; cluster++) {
        const free = this.reserved !== undefined && cluster >= layout.offset / clusterSize + blocks && cluster < tableOffset / clusterSize;
        if (!free) setRefcount(bytes, cluster - first, this.options.refcountOrder, this.packer.references(cluster));
      }
    }
    refcounts.set(encodeRefcountTable(blockOffsets, clusterSize, layout.tableClusters), layout.blocks * clusterSize);
    await this.write(refcounts, layout.offset);
    await this.sync();
    const l1Cluster = new Uint8Array(this.l1Clusters * clusterSize);
    l1Cluster.set(this.l1);
    await this.file.write(l1Cluster, clusterSize);
    await this.sync();
    const header = newImageHeaderCluster(this.options, {
      l1Size: this.l1.length / 8,
      l1TableOffset: clusterSize,
      refcountTableOffset: tableOffset,
      refcountTableClusters: layout.tableClusters,
      size: this.options.size,
    });
    await this.file.write(header, 0);
    await this.sync();
  }

  private async sync(): Promise<void> {
    if (this.durable) await this.file.flush();
  }

  /** Moves to the L2 table of `cluster`, appending the previous one when it is complete. Clusters only go up. */
  private enter(cluster: number): void {
    if (this.finished) throw new DiskError('E_INVALID', 'the image is already finished');
    if (cluster <= this.lastCluster) throw new DiskError('E_INVALID', `cluster ${cluster} comes after cluster ${this.lastCluster}: sequential writes go forward`);
    if (cluster * this.clusterSize >= this.options.size) throw new DiskError('E_INVALID', `cluster ${cluster} lies past the end of the disk`);
    const index = Math.floor(cluster / this.geometry.l2Entries);
    if (index === this.l2Index) return;
    this.closeL2();
    this.l2Index = index;
    this.l2 = new Uint8Array(this.clusterSize);
    this.l2Host = this.end;
    this.end += this.clusterSize;
  }

  private setEntry(cluster: number, entry: Parameters<typeof encodeL2Entry>[2]): void {
    const table = this.l2!;
    encodeL2Entry(new DataView(table.buffer, table.byteOffset, table.byteLength), cluster % this.geometry.l2Entries, entry, this.geometry);
  }

  /** Appends the current L2 table and points its L1 entry at it (in memory: the L1 table is written last). */
  private closeL2(): void {
    if (this.l2 === undefined) return;
    const host = this.l2Host;
    // Awaited by finish (inFlight); a failure shows there.
    this.write(this.l2, host).catch(() => undefined);
    writeL1Entry(new DataView(this.l1.buffer), this.l2Index, host, true);
    this.l2 = undefined;
  }

  /** Issues a write and keeps it in `inFlight` until it lands (finish waits for all of them). */
  private write(bytes: Uint8Array, offset: number): Promise<void> {
    // Appending only: the file ends where its last bytes do (inside a cluster after compressed data, as QEMU's).
    const write = this.file.write(bytes, offset);
    this.inFlight.add(write);
    write.then(
      () => this.inFlight.delete(write),
      (error: unknown) => {
        this.inFlight.delete(write);
        this.failure ??= { error };
      },
    );
    return write;
  }
}

/** At most this many refcount clusters are reserved up front (a bound on a huge sparse disk could be gigabytes). */
const MAX_RESERVED_CLUSTERS = 64;

/** Refcount blocks and table clusters that count `clusters` clusters and themselves. */
function refcountLayout(clusters: number, geometry: Geometry): { blocks: number; tableClusters: number } {
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const needBlocks = Math.ceil((clusters + blocks + tableClusters) / geometry.refcountBlockEntries);
    const needTable = Math.max(1, Math.ceil((needBlocks * 8) / geometry.clusterSize));
    if (needBlocks === blocks && needTable === tableClusters) return { blocks, tableClusters };
    blocks = needBlocks;
    tableClusters = needTable;
  }
}
