import type { TableCache } from '@q/cache';
import { ALL_SUBCLUSTERS, encodeDataClusterRun, encodeL2Entry, setL2EntryCopied, type Geometry, type L2Entry, type L2EntryFields } from '@q/format';
import type { RefcountStore } from '@q/refcount';
import { DiskError, type BlockFile } from '@q/raw';
import { ACTIVE_L2_TABLE, type ClusterMapper } from './cluster-mapper.js';
import type { L1Table } from './l1-table.js';
import type { MetadataRegions } from './metadata-regions.js';

export interface L2WriterOptions {
  /** The image file (where L1 and L2 tables live). */
  file: BlockFile;
  geometry: Geometry;
  l1: L1Table;
  l2Cache: TableCache;
  refcounts: RefcountStore;
  metadata: MetadataRegions;
  mapper: ClusterMapper;
  /**
   * Makes refcount changes durable (write back, then sync unless refcounts are lazy). Runs before anything that
   * references a newly counted cluster is written.
   */
  syncRefcounts(): Promise<void>;
}

/** A writable L2 table: where it lives and its cached bytes (changes go through `setEntry`). */
export interface WritableTable {
  offset: number;
  bytes: Uint8Array;
  view: DataView;
}

/** A new L2 table for installTables: the L1 entry it fills, the cluster it goes to, its bytes. */
export interface NewTable {
  l1Index: number;
  offset: number;
  bytes: Uint8Array;
}

/** What an L2 entry should say. Standard entries use `zero`; extended ones use the two subcluster masks. */
export interface NewEntry {
  hostOffset: number;
  copied: boolean;
  zero?: boolean;
  allocMask?: number;
  zeroMask?: number;
  /** Set for a compressed cluster: `hostOffset` is then the byte offset of this many compressed bytes. */
  compressedBytes?: number;
}

/**
 * The write side of the mapping tables: hands out L2 tables that may be changed in place (allocating a new one,
 * or copying one shared with a snapshot) and writes entries into them. Ordering (spec and DESIGN.md): refcounts of
 * a new table are durable before the table is written, the table is durable before the L1 entry points at it,
 * and the L1 entry is durable before the table it replaced loses its reference.
 */
export class L2Writer {
  private readonly options: L2WriterOptions;

  constructor(options: L2WriterOptions) {
    this.options = options;
  }

  /** The L2 table for `l1Index`, writable in place. Runs under the engine's metadata lock. */
  async writableTable(l1Index: number): Promise<WritableTable> {
    const { l1, mapper, l2Cache, refcounts, file, geometry, metadata } = this.options;
    const current = l1.l2Offset(l1Index);
    if (current !== 0 && l1.copied(l1Index)) {
      const bytes = l2Cache.peek(current) ?? (await mapper.loadL2(current, l1Index));
      return { offset: current, bytes, view: viewOf(bytes) };
    }
    const offset = await refcounts.allocate(1);
    let bytes: Uint8Array;
    if (current === 0) {
      bytes = new Uint8Array(geometry.clusterSize);
    } else {
      // Copy-on-write of a table shared with a snapshot. A cluster's refcount counts the L1 tables that reach it
      // (spec: snapshots raise the count of everything reachable), so the clusters keep their counts: the old
      // table and the copy now reach them once each. They stay shared, so none is COPIED.
      bytes = (await mapper.loadL2(current, l1Index)).slice();
      this.clearCopied(bytes);
    }
    await this.options.syncRefcounts();
    await file.write(bytes, offset);
    // Readers run outside the lock: once L1 points at the table, their bounds check must already cover it.
    mapper.imageFileSize = Math.max(mapper.imageFileSize, offset + geometry.clusterSize);
    await file.flush();
    await l1.set(l1Index, offset, true, file);
    await file.flush();
    metadata.add(offset, geometry.clusterSize, ACTIVE_L2_TABLE);
    await l2Cache.insertClean(offset, bytes);
    if (current !== 0 && (await refcounts.adjust(current / geometry.clusterSize, -1)) === 0) {
      metadata.remove(current, geometry.clusterSize);
      l2Cache.drop(current);
    }
    return { offset, bytes, view: viewOf(bytes) };
  }

  /** Writes entry `index` of a writable table (in the cache; written back with the next flush). */
  setEntry(table: WritableTable, index: number, entry: NewEntry): void {
    encodeL2Entry(table.view, index, entryFields(entry, this.options.geometry), this.options.geometry);
    this.options.l2Cache.markDirty(table.offset);
  }

  /**
   * Entries `[index, index + count)` of `view` (a writable table's, or the bytes of a table for installTables) all
   * say `entry`: encoded once, then copied. Zeroing or discarding a whole table's range costs one encode, not 8192.
   */
  fillEntries(view: DataView, index: number, count: number, entry: NewEntry): void {
    if (count <= 0) return;
    const { geometry } = this.options;
    encodeL2Entry(view, index, entryFields(entry, geometry), geometry);
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const start = index * geometry.l2EntryBytes;
    const end = start + count * geometry.l2EntryBytes;
    for (let filled = geometry.l2EntryBytes; start + filled < end; filled *= 2) {
      bytes.copyWithin(start + filled, start, Math.min(start + filled, end - filled));
    }
  }

  /** Marks a writable table changed after fillEntries wrote into its view. */
  markChanged(table: WritableTable): void {
    this.options.l2Cache.markDirty(table.offset);
  }

  /**
   * Entries `[index, index + count)` of a writable table name consecutive data clusters from `hostOffset` (COPIED,
   * no zero or subcluster bits): preallocation's entries, encoded in one loop.
   */
  setDataRun(table: WritableTable, index: number, count: number, hostOffset: number): void {
    encodeDataClusterRun(table.view, index, count, hostOffset, this.options.geometry);
    this.options.l2Cache.markDirty(table.offset);
  }

  /**
   * Puts new L2 tables in place where the L1 table has none: each table's bytes, built by the caller, go to its
   * cluster (counted already), in writableTable's order for all of them at once: refcounts durable, then the tables
   * written and durable, then their L1 entries, durable. One round of syncs for many tables (preallocating 1 TiB
   * made three per table, 6000 syncs). The tables are not cached; readers load them. Runs under the metadata lock.
   */
  async installTables(tables: ReadonlyArray<NewTable>): Promise<void> {
    const { l1, mapper, file, geometry, metadata } = this.options;
    for (const table of tables) {
      if (l1.l2Offset(table.l1Index) !== 0) throw new DiskError('E_INVALID', `L1 entry ${table.l1Index} already names an L2 table`);
    }
    await this.options.syncRefcounts();
    await Promise.all(tables.map((table) => file.write(table.bytes, table.offset)));
    // Readers run outside the lock: once L1 points at a table, their bounds check must already cover it.
    for (const table of tables) mapper.imageFileSize = Math.max(mapper.imageFileSize, table.offset + geometry.clusterSize);
    await file.flush();
    for (const table of tables) {
      await l1.set(table.l1Index, table.offset, true, file);
      metadata.add(table.offset, geometry.clusterSize, ACTIVE_L2_TABLE);
    }
    await file.flush();
  }

  /** Decodes entry `index` of a writable table. */
  entry(table: WritableTable, index: number): L2Entry {
    return this.options.mapper.decodeEntry(table.view, index);
  }

  private clearCopied(bytes: Uint8Array): void {
    const { geometry } = this.options;
    const view = viewOf(bytes);
    for (let index = 0; index < geometry.l2Entries; index++) setL2EntryCopied(view, index, false, geometry);
  }
}

/**
 * The host clusters an L2 entry holds a reference to: a standard cluster (allocated or preallocated zero), or
 * every cluster compressed data touches (spec: each counts once per entry). None with an external data file.
 */
export function referencedClusters(entry: L2Entry, geometry: Geometry): number[] {
  if (geometry.externalDataFile && !entry.compressed) return [];
  if (entry.compressed) {
    const first = Math.floor(entry.hostOffset / geometry.clusterSize);
    const last = Math.floor((entry.hostOffset + entry.compressedBytes - 1) / geometry.clusterSize);
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  }
  return entry.hostOffset === 0 ? [] : [entry.hostOffset / geometry.clusterSize];
}

/**
 * The host clusters every entry of an L2 table references (referencedClusters of each, in entry order), each entry
 * decoded and checked by `decode`. An entry whose first word is 0 (host offset and flags) references nothing and is
 * not decoded: most of an overlay's entries, and all of a sparse image's. One array for the table instead of one per
 * entry, for callers that move the counts of thousands of clusters (emptying a committed overlay, snapshots).
 */
export function tableReferences(view: DataView, geometry: Geometry, decode: (view: DataView, index: number) => L2Entry): number[] {
  const clusters: number[] = [];
  for (let index = 0; index < geometry.l2Entries; index++) {
    const at = index * geometry.l2EntryBytes;
    if (view.getUint32(at) === 0 && view.getUint32(at + 4) === 0) continue;
    const entry = decode(view, index);
    if (!entry.compressed) {
      if (entry.hostOffset !== 0 && !geometry.externalDataFile) clusters.push(entry.hostOffset / geometry.clusterSize);
      continue;
    }
    for (const cluster of referencedClusters(entry, geometry)) clusters.push(cluster);
  }
  return clusters;
}

/** Subclusters `[first, last]` as a mask (bit n = subcluster n). */
export function subclusterMask(first: number, last: number): number {
  const width = last - first + 1;
  return (width >= 32 ? ALL_SUBCLUSTERS : ((2 ** width - 1) * 2 ** first)) >>> 0;
}

/** The fields an entry is encoded from: a standard table says "reads as zeros" with its zero flag, an extended one
 * with the zero subcluster bits; a compressed entry has neither (nor COPIED). */
function entryFields(entry: NewEntry, geometry: Geometry): L2EntryFields {
  const zeroMask = geometry.extendedL2 ? (entry.zeroMask ?? 0) : entry.zero === true ? ALL_SUBCLUSTERS : 0;
  const compressed = entry.compressedBytes !== undefined;
  return {
    compressed,
    compressedBytes: entry.compressedBytes ?? 0,
    hostOffset: entry.hostOffset,
    copied: entry.copied && !compressed,
    allocMask: compressed ? 0 : (entry.allocMask ?? 0),
    zeroMask: compressed ? 0 : zeroMask,
  };
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

