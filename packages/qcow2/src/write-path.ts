import type { TableCache } from '@q/cache';
import { ALL_SUBCLUSTERS, l2EntryCopied, type Geometry, type L2Entry } from '@q/format';
import { referencedClusters, subclusterMask, type ClusterMapper, type L2Writer, type MetadataRegions, type NewEntry, type WritableTable } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import { DiskError, hex, type BlockDevice, type BlockFile } from '@q/raw';
import { AsyncLock, KeyedClaims } from './async-lock.js';
import type { DeallocationQueue } from './deallocation-queue.js';
import type { HeaderState } from './header-state.js';
import { dataHost, newHostCluster } from './host-allocation.js';
import type { TrackedFile } from './tracked-file.js';
import { cutFreeTail } from './finish-writes.js';
import { writeWholeClusters, type WholeClusterWriter } from './whole-cluster-write.js';
import { clusterPieces, groupPieces, type PieceRoute } from './write-pieces.js';

/** A new L2 entry; `keepsReference` says it still names the old entry's cluster (only its flags changed). */
export type NewEntryDecision = NewEntry & { keepsReference?: boolean };

/** Whether an entry holds a cluster (or compressed data): what releasing it gives back. */
export function entryAllocated(entry: L2Entry): boolean {
  return entry.compressed || entry.hostOffset !== 0 || entry.allocMask !== 0;
}

export interface WritePathParts {
  file: TrackedFile;
  /** Where guest clusters live: the image file, or the external data file. */
  dataFile: TrackedFile;
  geometry: Geometry;
  header: HeaderState;
  mapper: ClusterMapper;
  l2Writer: L2Writer;
  l2Cache: TableCache;
  refcounts: RefcountStore;
  metadata: MetadataRegions;
  backing: BlockDevice | undefined;
  /** Reads guest bytes of this image as they are now (the engine's read path). */
  readGuest(dst: Uint8Array, offset: number): Promise<void>;
  virtualSize(): number;
  lock: AsyncLock;
  /** Refcounts are lazy (dirty bit set while open): no sync orders them before the tables using them. */
  lazyRefcounts: boolean;
  /** The external data file is kept a valid raw image (zeros are written, not only flagged). */
  dataFileRaw: boolean;
  /** Freed clusters whose holes are punched at the end of every flush. */
  deallocations: DeallocationQueue;
}

/**
 * Writes into a qcow2 image (zero writes and discards build on it: zero-path.ts). A write to a cluster this image
 * owns alone (COPIED) goes straight to its host cluster; anything else (unallocated, zero, compressed, shared with
 * a snapshot) gets a new cluster whose untouched bytes are copied from what the guest saw before (the backing
 * file, zeros, or the old cluster), or, when the write covers it whole, nothing (whole-cluster-write.ts). Contiguous
 * host runs go out as one write. Old clusters are released only after the tables no longer naming them are
 * durable (at flush), so a crash leaks at worst.
 */
export class WritePath implements WholeClusterWriter {
  readonly p: WritePathParts;
  private readonly claims = new KeyedClaims();
  /** Clusters to release once the L2 tables that dropped them are durable. */
  private pendingFrees: number[] = [];
  /** In-place data writes in flight: released clusters are not reused until they are done. */
  private inPlace = new Set<Promise<void>>();

  constructor(parts: WritePathParts) {
    this.p = parts;
  }

  /**
   * Writes guest bytes with one data I/O per contiguous host run (DESIGN.md): clusters written in place whose host
   * clusters follow each other go out together, and whole clusters needing new host clusters get one run of them
   * (writeWholeClusters); only partial clusters needing copy-on-write go cluster by cluster.
   */
  async write(src: Uint8Array, offset: number): Promise<void> {
    const { clusterSize } = this.p.geometry;
    const pieces = clusterPieces(offset, src.length, clusterSize);
    if (pieces.length === 1) return this.writeCluster(pieces[0]!.cluster, pieces[0]!.at, src);
    const tasks: Promise<void>[] = [];
    // A flush releases clusters dropped from the tables once the in-place writes in flight have landed. From
    // finding a cluster writable in place until that write has landed, this request counts as such a write: the
    // gate keeps flush from releasing (and the allocator from reusing) a cluster it is about to write or writing.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    this.inPlace.add(gate);
    const inPlaceWrites: Promise<void>[] = [];
    try {
      const routes: PieceRoute[] = [];
      for (const piece of pieces) {
        // Awaited only when a table had to be loaded: a cached one answers without a turn of the microtask queue.
        const found = this.inPlaceTarget(piece.cluster, piece.at, piece.end - piece.start);
        const host = found instanceof Promise ? await found : found;
        if (host !== undefined) routes.push({ kind: 'in-place', host });
        else routes.push({ kind: piece.end - piece.start === clusterSize ? 'whole' : 'partial' });
      }
      for (const group of groupPieces(pieces, routes)) {
        const first = group.pieces[0]!;
        const bytes = src.subarray(first.start, group.pieces[group.pieces.length - 1]!.end);
        if (group.kind === 'in-place') inPlaceWrites.push(this.writeInPlace(bytes, group.host!));
        else if (group.kind === 'whole' && group.pieces.length > 1) tasks.push(writeWholeClusters(this, first.cluster, bytes));
        else tasks.push(this.writeCluster(first.cluster, first.at, bytes));
      }
    } finally {
      void Promise.allSettled(inPlaceWrites).then(() => {
        this.inPlace.delete(gate);
        open();
      });
    }
    await Promise.all([...inPlaceWrites, ...tasks]);
  }

  /** Claims guest `cluster` for a change of its mapping (see KeyedClaims); the returned function releases it. */
  claim(cluster: number): Promise<() => void> {
    return this.claims.claim(cluster);
  }

  /** `claim` when nobody holds `cluster`: taken at once; undefined when someone does (then `claim` waits). */
  tryClaim(cluster: number): (() => void) | undefined {
    return this.claims.tryClaim(cluster);
  }

  /** Writes `bytes` at `at` inside guest `cluster` (in place, or allocating under the cluster's claim). */
  async writeCluster(cluster: number, at: number, bytes: Uint8Array): Promise<void> {
    for (;;) {
      const host = await this.inPlaceTarget(cluster, at, bytes.length);
      if (host !== undefined) return this.writeInPlace(bytes, host);
      const release = await this.claims.claim(cluster);
      try {
        if ((await this.inPlaceTarget(cluster, at, bytes.length)) !== undefined) continue;
        await this.allocatingWrite(cluster, at, bytes);
        return;
      } finally {
        release();
      }
    }
  }

  /** The L2 entry of guest `cluster` as it is now (an empty entry where there is no table), read without claiming. */
  async entryOf(cluster: number): Promise<L2Entry> {
    const { geometry, mapper } = this.p;
    const l1Index = Math.floor(cluster / geometry.l2Entries);
    const tableOffset = mapper.l1.l2Offset(l1Index);
    if (tableOffset === 0) return mapper.decodeEntry(new DataView(new ArrayBuffer(geometry.l2EntryBytes)), 0);
    const table = this.p.l2Cache.peek(tableOffset) ?? (await mapper.loadL2(tableOffset, l1Index));
    return mapper.decodeEntry(new DataView(table.buffer, table.byteOffset, table.byteLength), cluster % geometry.l2Entries);
  }

  /**
   * The host offset to write `[at, at + length)` of `cluster` in place, or undefined when it must be allocated; a
   * promise only when the cluster's L2 table is not in the cache.
   */
  private inPlaceTarget(cluster: number, at: number, length: number): number | undefined | Promise<number | undefined> {
    const { geometry, mapper } = this.p;
    const l1Index = Math.floor(cluster / geometry.l2Entries);
    if (!mapper.l1.copied(l1Index)) return undefined;
    const tableOffset = mapper.l1.l2Offset(l1Index);
    const cached = this.p.l2Cache.peek(tableOffset);
    if (cached === undefined) return mapper.loadL2(tableOffset, l1Index).then((table) => this.inPlaceIn(table, cluster, at, length));
    return this.inPlaceIn(cached, cluster, at, length);
  }

  /** inPlaceTarget once `table`, the cluster's L2 table, is at hand. */
  private inPlaceIn(table: Uint8Array, cluster: number, at: number, length: number): number | undefined {
    const { geometry, mapper } = this.p;
    const index = cluster % geometry.l2Entries;
    // Only an entry with COPIED can be written in place: tested on the bytes before any decoding, so the clusters a
    // copy allocates cost no entry object each. The allocating paths decode and check the entry themselves (a
    // corrupt one fails there).
    if (!l2EntryCopied(table, index, geometry.extendedL2)) return undefined;
    const entry = mapper.decodeEntry(new DataView(table.buffer, table.byteOffset, table.byteLength), index);
    if (entry.compressed || !entry.copied) return undefined;
    const needed = subclusterMask(Math.floor(at / geometry.subclusterSize), Math.floor((at + length - 1) / geometry.subclusterSize));
    if ((entry.allocMask & needed) !== needed) return undefined;
    return dataHost(this.p.geometry, entry, cluster) + at;
  }

  private async writeInPlace(bytes: Uint8Array, host: number): Promise<void> {
    this.checkOverlap(host, bytes.length);
    const write = this.p.dataFile.write(bytes, host);
    this.inPlace.add(write);
    try {
      await write;
    } finally {
      this.inPlace.delete(write);
    }
  }

  /**
   * A write that needs a new cluster (or new subclusters). The untouched bytes come from the guest view before the
   * write, read outside the lock; the cluster is claimed, so nothing else changes it meanwhile.
   */
  private async allocatingWrite(cluster: number, at: number, bytes: Uint8Array): Promise<void> {
    const { geometry } = this.p;
    const { clusterSize, subclusterSize } = geometry;
    const clusterStart = cluster * clusterSize;
    const l1Index = Math.floor(cluster / geometry.l2Entries);
    const index = cluster % geometry.l2Entries;
    const entry = await this.p.lock.run(async () => this.p.l2Writer.entry(await this.p.l2Writer.writableTable(l1Index), index));

    const touched = subclusterMask(Math.floor(at / subclusterSize), Math.floor((at + bytes.length - 1) / subclusterSize));
    const allocated = entry.hostOffset !== 0 || (geometry.externalDataFile && entry.allocMask !== 0);
    const reuse = !entry.compressed && allocated && entry.copied;
    // The span written: whole subclusters around the write (whole clusters without extended L2), unless the cluster
    // is copied as a whole (compressed, or shared with a snapshot).
    const whole = !reuse && (entry.compressed || allocated);
    const spanStart = whole ? 0 : Math.floor(at / subclusterSize) * subclusterSize;
    const spanEnd = whole ? clusterSize : Math.ceil((at + bytes.length) / subclusterSize) * subclusterSize;
    const coversSpan = at === spanStart && at + bytes.length === spanEnd;
    const zeroBelow = this.readsAsZero(entry, cluster, spanStart, spanEnd);
    // The caller's bytes go out as they are when they fill the span. Otherwise what shows through is read now
    // (before allocating); a span over zeros is only assembled if the new cluster turns out not to be fresh.
    let span: Uint8Array | undefined;
    if (coversSpan) span = bytes;
    else if (!zeroBelow) {
      span = new Uint8Array(spanEnd - spanStart);
      await this.readGuestClipped(span, clusterStart + spanStart);
      span.set(bytes, at - spanStart);
    }

    const fileEnd = this.p.file.end;
    const host = reuse ? dataHost(this.p.geometry, entry, cluster) : await this.p.lock.run(() => newHostCluster(this.p, cluster));
    this.checkOverlap(host + spanStart, spanEnd - spanStart);
    // A new cluster past the old end of the file is all zeros already: only the written bytes need to go there.
    const fresh = !reuse && !geometry.externalDataFile && host >= fileEnd && zeroBelow;
    if (fresh) await this.p.dataFile.write(bytes, host + at);
    else {
      if (span === undefined) {
        span = new Uint8Array(spanEnd - spanStart);
        span.set(bytes, at - spanStart);
      }
      await this.p.dataFile.write(span, host + spanStart);
    }

    await this.p.lock.run(async () => {
      const table = await this.p.l2Writer.writableTable(l1Index);
      const spanMask = geometry.extendedL2 ? subclusterMask(spanStart / subclusterSize, spanEnd / subclusterSize - 1) : ALL_SUBCLUSTERS;
      const allocMask = whole && entry.compressed ? ALL_SUBCLUSTERS : (entry.allocMask | spanMask | touched) >>> 0;
      this.p.l2Writer.setEntry(table, index, {
        hostOffset: geometry.externalDataFile ? clusterStart : host,
        copied: true,
        allocMask,
        zeroMask: (entry.zeroMask & ~allocMask) >>> 0,
      });
      if (!reuse) this.release(entry);
    });
  }

  /** Whether guest bytes `[from, to)` of `cluster` read as zeros without looking (zero flag, nothing below). */
  private readsAsZero(entry: L2Entry, cluster: number, from: number, to: number): boolean {
    const { geometry, backing } = this.p;
    if (entry.compressed) return false;
    const mask = subclusterMask(Math.floor(from / geometry.subclusterSize), Math.floor((to - 1) / geometry.subclusterSize));
    if ((entry.allocMask & mask) !== 0) return false;
    if ((entry.zeroMask & mask) === mask) return true;
    return backing === undefined || cluster * geometry.clusterSize + from >= backing.size;
  }

  /** Reads guest bytes, zeros past the end of the disk (the last cluster may reach beyond it). */
  private async readGuestClipped(dst: Uint8Array, offset: number): Promise<void> {
    const inside = Math.max(0, Math.min(dst.length, this.p.virtualSize() - offset));
    if (inside > 0) await this.p.readGuest(dst.subarray(0, inside), offset);
  }

  /** Queues the references `entry` held for release at the next flush. */
  release(entry: L2Entry): void {
    for (const cluster of referencedClusters(entry, this.p.geometry)) this.pendingFrees.push(cluster);
  }

  /**
   * Makes everything written so far durable, in the order that keeps the image consistent at every step: data and
   * refcounts, then L2 tables, then the release of clusters they no longer name (after in-place writes that may
   * still target those clusters have landed), and last the holes of clusters freed since the last flush: every
   * table that named them is on disk by now (DeallocationQueue), and the lock keeps the allocator off them.
   */
  async flush(): Promise<void> {
    const { file, dataFile, refcounts, l2Cache, lock } = this.p;
    await lock.run(async () => {
      if (dataFile !== file) await dataFile.flush();
      await this.syncRefcounts();
      // With lazy refcounts that wrote the refcounts without a sync; data in the image file (a compressed cluster's
      // stream, new bytes in a reused cluster) must still be durable before the L2 tables naming it, or a crash
      // keeps an entry pointing at bytes that never landed (an undecodable cluster, another cluster's old data).
      if (file.unsynced) await file.flush();
      await l2Cache.flush();
      await file.flush();
      if (this.pendingFrees.length > 0) {
        await Promise.all(this.inPlace);
        const frees = this.pendingFrees;
        this.pendingFrees = [];
        for (const cluster of frees) await refcounts.adjust(cluster, -1);
        await refcounts.flush();
        await file.flush();
      }
      await this.p.deallocations.release(() => cutFreeTail(file, refcounts, this.p.geometry.clusterSize));
    });
  }

  /** Refcount changes reach the file (and, unless refcounts are lazy, the disk) before what depends on them. */
  async syncRefcounts(): Promise<void> {
    await this.p.refcounts.flush();
    if (!this.p.lazyRefcounts && this.p.file.unsynced) await this.p.file.flush();
  }

  /**
   * What must be on disk before an L2 table is written back outside a flush (evicted from the cache): the
   * refcounts it needs, and the data and file growth its new entries name. Otherwise a crash can keep an entry
   * whose data never landed: a reused cluster's stale bytes, the bytes from before a flushed zero write, or a
   * cluster past the end of the file. Without lazy refcounts the refcount sync covers the image file; lazy
   * refcounts and an external data file need the syncs said here (tests/crash lazy-refcounts.test.ts).
   */
  async syncBeforeTableWriteBack(): Promise<void> {
    const { file, dataFile, refcounts } = this.p;
    if (dataFile !== file && dataFile.unsynced) await dataFile.flush();
    await refcounts.flush();
    if (file.unsynced) await file.flush();
  }

  /**
   * Rewrites one L2 entry under the cluster's claim and the metadata lock. `decide` returns the new entry, or
   * undefined to leave it; the old entry's references are released unless the new one keeps them.
   */
  async changeEntry(cluster: number, decide: (entry: L2Entry) => NewEntryDecision | undefined): Promise<void> {
    const { geometry, l2Writer, lock } = this.p;
    const release = await this.claims.claim(cluster);
    try {
      await lock.run(async () => {
        const table = await l2Writer.writableTable(Math.floor(cluster / geometry.l2Entries));
        this.applyDecision(table, cluster % geometry.l2Entries, decide);
      });
    } finally {
      release();
    }
  }

  /** Claims guest clusters `[first, end)` as one (KeyedClaims.claimRange); the returned function releases them. */
  claimRange(first: number, end: number): Promise<() => void> {
    return this.claims.claimRange(first, end);
  }

  /** Sets entry `index` of `table` to what `decide` says of it, releasing what the old entry held unless kept. */
  applyDecision(table: WritableTable, index: number, decide: (entry: L2Entry) => NewEntryDecision | undefined): void {
    const entry = this.p.l2Writer.entry(table, index);
    const next = decide(entry);
    if (next === undefined) return;
    this.p.l2Writer.setEntry(table, index, next);
    const keeps = next.keepsReference === true || (next.hostOffset !== 0 && next.hostOffset === entry.hostOffset);
    if (!keeps) this.release(entry);
  }

  /**
   * A write landing on metadata would destroy the image: refuse it (QEMU's overlap check). The engine marks the
   * image corrupt on the way out, as for every broken pointer (Qcow2Image.signalCorruption).
   */
  checkOverlap(host: number, length: number): void {
    if (this.p.geometry.externalDataFile) return;
    const overlapped = this.p.metadata.overlap(host, length);
    if (overlapped === undefined) return;
    throw new DiskError('E_CORRUPT', `write at ${hex(host)} would overwrite the ${overlapped}`, { file: this.p.file.name, offset: host });
  }
}
