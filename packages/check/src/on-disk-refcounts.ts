import {
  getRefcountExact,
  REFCOUNT_TABLE_OFFSET_LO_MASK,
  REFCOUNT_TABLE_RESERVED_LO_MASK,
  setRefcount,
  view,
  type Geometry,
  type QcowHeader,
} from '@q/format';
import { readPadded, type BlockFile } from '@q/raw';

/** A recorded refcount: a 64-bit entry may hold more than a JS number holds exactly (then a bigint). */
export type Refcount = number | bigint;

/** Why a refcount could not be read: QEMU refuses refcount blocks that are not cluster aligned. */
export class UnalignedRefcountBlock {
  constructor(readonly tableIndex: number, readonly offset: number) {}
}

/** Refcount blocks kept in memory at once (a cluster each). */
const CACHED_BLOCKS = 256;

/**
 * The refcounts the image records, read (and for repairs written) through its refcount table. Lookups read like
 * QEMU's: a missing table entry or block means 0, a block past the end of the file reads as zeros, and an
 * unaligned block offset is an error for every cluster it would cover.
 */
export class OnDiskRefcounts {
  readonly tableOffset: number;
  /**
   * Refcount table entries as stored: bits 9-63 the block offset (reserved bits masked off, as QEMU reads them;
   * Infinity when beyond 2^53, which no file reaches), and whether any of bits 0-8 is set.
   */
  readonly offsets: Float64Array;
  readonly reservedBits: Uint8Array;
  private readonly cache = new Map<number, Uint8Array>();
  /** The block used last, and its view: consecutive lookups mostly hit the same block. */
  private last: { index: number; block: Uint8Array; view: DataView } | undefined;

  private constructor(
    private readonly file: BlockFile,
    private readonly geometry: Geometry,
    readonly refcountOrder: number,
    tableOffset: number,
    table: Uint8Array,
    private readonly onUnaligned: ((block: UnalignedRefcountBlock) => Promise<void>) | undefined,
  ) {
    this.tableOffset = tableOffset;
    const v = view(table);
    const count = table.length / 8;
    this.offsets = new Float64Array(count);
    this.reservedBits = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const hi = v.getUint32(i * 8);
      const lo = v.getUint32(i * 8 + 4);
      this.offsets[i] = hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + ((lo & REFCOUNT_TABLE_OFFSET_LO_MASK) >>> 0);
      this.reservedBits[i] = (lo & REFCOUNT_TABLE_RESERVED_LO_MASK) !== 0 ? 1 : 0;
    }
  }

  /**
   * Loads the refcount table the header names (refcount_table_clusters clusters, at most 8 MiB by then).
   * `onUnaligned` hears of every lookup that meets an unaligned block (QEMU signals the image as corrupt).
   */
  static async load(
    file: BlockFile,
    header: QcowHeader,
    geometry: Geometry,
    onUnaligned?: (block: UnalignedRefcountBlock) => Promise<void>,
  ): Promise<OnDiskRefcounts> {
    const bytes = new Uint8Array(header.refcountTableClusters * geometry.clusterSize);
    await readPadded(file, bytes, header.refcountTableOffset);
    return new OnDiskRefcounts(file, geometry, header.refcountOrder, header.refcountTableOffset, bytes, onUnaligned);
  }

  /** Clusters one refcount block describes. */
  get blockEntries(): number {
    return this.geometry.refcountBlockEntries;
  }

  /** The refcount block covering `index` as stored, undefined when it has none, or why it cannot be read. */
  async block(index: number): Promise<Uint8Array | undefined | UnalignedRefcountBlock> {
    const offset = this.offsets[index];
    if (offset === undefined || offset === 0) return undefined;
    if (Number.isFinite(offset) && offset % this.geometry.clusterSize !== 0) {
      const unaligned = new UnalignedRefcountBlock(index, offset);
      await this.onUnaligned?.(unaligned);
      return unaligned;
    }
    const cached = this.cache.get(index);
    if (cached !== undefined) {
      // Refresh its place in the eviction order.
      this.cache.delete(index);
      this.cache.set(index, cached);
      return cached;
    }
    const block = new Uint8Array(this.geometry.clusterSize);
    // A block past the end of the file (or beyond 2^53) reads as zeros, as QEMU reads it.
    if (Number.isFinite(offset)) await readPadded(this.file, block, offset);
    if (this.cache.size >= CACHED_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(index, block);
    return block;
  }

  /** The recorded refcount of `cluster`, or why it cannot be read. */
  async get(cluster: number): Promise<Refcount | UnalignedRefcountBlock> {
    const index = Math.floor(cluster / this.blockEntries);
    const last = this.last;
    if (last !== undefined && last.index === index) return getRefcountExact(last.block, cluster % this.blockEntries, this.refcountOrder, last.view);
    const block = await this.block(index);
    if (block === undefined) return 0;
    if (block instanceof UnalignedRefcountBlock) return block;
    this.last = { index, block, view: view(block) };
    return getRefcountExact(block, cluster % this.blockEntries, this.refcountOrder, this.last.view);
  }

  /**
   * Writes a new refcount for a cluster whose block exists (only called where `get` returned a value > 0, so the
   * block is there). Only the bytes holding the entry are written.
   */
  async set(cluster: number, value: number): Promise<void> {
    const index = Math.floor(cluster / this.blockEntries);
    const block = await this.block(index);
    if (block === undefined || block instanceof UnalignedRefcountBlock) throw new Error(`no refcount block for cluster ${cluster}`);
    const entry = cluster % this.blockEntries;
    // The block may be a fresh copy of one evicted meanwhile: the remembered one could be stale now.
    this.last = undefined;
    setRefcount(block, entry, this.refcountOrder, value);
    const bits = 2 ** this.refcountOrder;
    const first = Math.floor((entry * bits) / 8);
    const length = Math.max(1, bits / 8);
    await this.file.write(block.slice(first, first + length), this.offsets[index]! + first);
  }

  /** Forgets cached blocks (after the refcount structures were rewritten elsewhere). */
  clearCache(): void {
    this.cache.clear();
    this.last = undefined;
  }
}
