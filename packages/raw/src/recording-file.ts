import type { BlockFile, BlockFileCapabilities, FileRun } from './block-file.js';
import { DiskError } from './errors.js';

/** One operation that changed (or synced) the recorded file, in the order it reached the recorder. */
export type RecordedOp = RecordedWrite | RecordedTruncate | RecordedDeallocate | RecordedFlush;

export interface RecordedWrite {
  readonly kind: 'write';
  /** Position in the log. */
  readonly index: number;
  readonly offset: number;
  /** A private copy of the bytes written. */
  readonly bytes: Uint8Array;
  /** Index of the first flush (in the log) that made this write durable; undefined while none has. */
  readonly durableAt: number | undefined;
}

export interface RecordedTruncate {
  readonly kind: 'truncate';
  readonly index: number;
  readonly size: number;
  /** The length the file had (as the recorder saw it) when the truncate was issued. */
  readonly previousSize: number;
  readonly durableAt: number | undefined;
}

/**
 * A deallocation (a punched hole): replayed as zeros over the range, inside the file's length at that point (a
 * hole never extends a file). Like a write, it may or may not have reached the disk until a flush covers it.
 */
export interface RecordedDeallocate {
  readonly kind: 'deallocate';
  readonly index: number;
  readonly offset: number;
  /** Bytes given back; 0 when the store could not deallocate (nothing changed). */
  readonly length: number;
  readonly durableAt: number | undefined;
}

export interface RecordedFlush {
  readonly kind: 'flush';
  readonly index: number;
  /** The log length when the flush was issued (it is recorded when it completes). */
  readonly issuedAt: number;
}

/**
 * What a crash keeps of the writes (and truncates) not yet covered by a completed flush:
 * - `keep-all`: every one, in issue order (only the flush itself was lost);
 * - `drop-all`: none of them;
 * - `subset`: a random subset (each kept with probability `keep`, default 0.5), in issue order;
 * - `reorder`: a random subset applied in a random order different from the issue order (where there are two or
 *   more), so a write can land before an earlier write it overlaps: the older bytes win;
 * - `explicit`: exactly these op indexes, applied in this order (each must be pending at the cut).
 */
export type CrashPolicy =
  | { readonly kind: 'keep-all' }
  | { readonly kind: 'drop-all' }
  | { readonly kind: 'subset'; readonly seed: number; readonly keep?: number }
  | { readonly kind: 'reorder'; readonly seed: number; readonly keep?: number }
  | { readonly kind: 'explicit'; readonly order: readonly number[] };

/** The file as a crash at one point would leave it, and how it came about. */
export interface CrashState {
  /** The file's bytes (its length is the file's length). */
  readonly bytes: Uint8Array;
  /** How many log entries had happened at the crash. */
  readonly cut: number;
  /** Index of the last flush completed before the crash, or -1. */
  readonly lastFlush: number;
  /** Op indexes that were durable (a completed flush covered them), applied in log order. */
  readonly durable: readonly number[];
  /** Op indexes issued but not durable at the crash. */
  readonly pending: readonly number[];
  /** The pending op indexes the crash kept, in the order they were applied. */
  readonly applied: readonly number[];
}

/**
 * A BlockFile decorator for crash tests. It passes every call through to the file it wraps and records an ordered
 * log of what changed the file (writes with a copy of their bytes, truncates, deallocations) and of completed flushes, on top of
 * a snapshot of the bytes the file held when recording began. From that it can rebuild the file as a crash at any
 * point would have left it.
 *
 * The crash model: a write is durable once a flush that was issued after the write completed has itself
 * completed; a write still in flight when a flush is issued is not covered by it. At a crash after the first `cut`
 * log entries, the file holds the base, every durable op (in log order), and then any subset of the other ops
 * issued before the crash, applied in any order (the policy picks which and in what order). Overlapping writes
 * thereby resolve in whichever order the policy applied them. A truncate that grows the file is applied as "at
 * least this long" when it is not durable (a lost extension cannot cut off a later write that persisted); a
 * shrinking truncate is applied as it is.
 *
 * Flushes are logged when they complete; writes, truncates and deallocations when they are issued. A deallocation is
 * replayed as zeros written over the range (within the file's length), so a hole punched too early shows up as a
 * crash image whose metadata points at zeros.
 */
export class RecordingBlockFile implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private readonly inner: BlockFile;
  private readonly baseBytes: Uint8Array;
  private readonly log: MutableOp[] = [];
  /** Ops (writes, truncates) no completed flush covers yet. */
  private readonly uncovered = new Set<number>();
  /** Ops issued whose promise has not settled. */
  private readonly inFlight = new Set<number>();
  private length: number;
  private closed = false;
  /** The wrapped file's SEEK_DATA view, when it has one (reads change nothing, so nothing is logged). */
  readonly runAt?: (offset: number, length: number) => Promise<FileRun>;
  readonly allocatedSize?: () => Promise<number>;

  private constructor(inner: BlockFile, base: Uint8Array) {
    this.inner = inner;
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.baseBytes = base;
    this.length = base.length;
    if (inner.runAt !== undefined) this.runAt = (offset, length) => inner.runAt!(offset, length);
    if (inner.allocatedSize !== undefined) this.allocatedSize = () => inner.allocatedSize!();
  }

  /** Wraps `inner`, taking a copy of its current bytes as the base of the log. */
  static async wrap(inner: BlockFile): Promise<RecordingBlockFile> {
    const size = await inner.size();
    const base = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const got = await inner.read(base.subarray(at), at);
      if (got <= 0) break;
      at += got;
    }
    if (at !== size) throw new DiskError('E_IO', `short read taking the recording base (${at} of ${size} bytes)`, { file: inner.name });
    return new RecordingBlockFile(inner, base);
  }

  /** The bytes the file held when recording began (a view: do not change it). */
  get base(): Uint8Array {
    return this.baseBytes;
  }

  /** The log, in order. */
  get ops(): readonly RecordedOp[] {
    return this.log;
  }

  /** Number of log entries: crash points run from 0 (nothing happened) to this (everything did). */
  get opCount(): number {
    return this.log.length;
  }

  /** Indexes of the completed flushes in the log. */
  flushIndexes(): number[] {
    return this.log.filter((op) => op.kind === 'flush').map((op) => op.index);
  }

  async read(dst: Uint8Array, offset: number): Promise<number> {
    return this.inner.read(dst, offset);
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    // What the file refuses outright (read-only, closed, a bad offset) changes nothing: it is not logged.
    if (!this.accepts(offset)) return this.inner.write(src, offset);
    const pending = this.inner.write(src, offset);
    const index = this.log.length;
    this.log.push({ kind: 'write', index, offset, bytes: src.slice(), durableAt: undefined });
    this.length = Math.max(this.length, offset + src.length);
    return this.track(index, pending);
  }

  async truncate(size: number): Promise<void> {
    if (!this.accepts(size)) return this.inner.truncate(size);
    const pending = this.inner.truncate(size);
    const index = this.log.length;
    this.log.push({ kind: 'truncate', index, size, previousSize: this.length, durableAt: undefined });
    this.length = size;
    return this.track(index, pending);
  }

  async deallocate(offset: number, length: number): Promise<boolean> {
    if (this.inner.deallocate === undefined || this.capabilities.deallocate !== true) return false;
    if (!this.accepts(offset)) return this.inner.deallocate(offset, length);
    const pending = this.inner.deallocate(offset, length);
    const index = this.log.length;
    const op: MutableDeallocate = { kind: 'deallocate', index, offset, length, durableAt: undefined };
    this.log.push(op);
    let punched = false;
    await this.track(
      index,
      pending.then((done) => {
        punched = done;
      }),
    );
    // The store could not after all: its bytes are unchanged, so the replay must not zero them.
    if (!punched) op.length = 0;
    return punched;
  }

  async flush(): Promise<void> {
    const issuedAt = this.log.length;
    // Only what has completed is covered by this flush.
    const covers = [...this.uncovered].filter((index) => !this.inFlight.has(index));
    await this.inner.flush();
    const index = this.log.length;
    this.log.push({ kind: 'flush', index, issuedAt });
    for (const op of covers) {
      if (!this.uncovered.has(op)) continue;
      (this.log[op] as MutableWrite | MutableTruncate | MutableDeallocate).durableAt = index;
      this.uncovered.delete(op);
    }
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }

  /** Index of the last flush completed among the first `cut` entries, or -1. */
  lastFlushBefore(cut: number): number {
    for (let i = Math.min(cut, this.log.length) - 1; i >= 0; i--) if (this.log[i]!.kind === 'flush') return i;
    return -1;
  }

  /** The op indexes durable at a crash after `cut` entries (log order) and those issued but not durable. */
  classify(cut: number): { durable: number[]; pending: number[]; lastFlush: number } {
    this.checkCut(cut);
    const durable: number[] = [];
    const pending: number[] = [];
    for (let i = 0; i < cut; i++) {
      const op = this.log[i]!;
      if (op.kind === 'flush') continue;
      if (op.durableAt !== undefined && op.durableAt < cut) durable.push(i);
      else pending.push(i);
    }
    return { durable, pending, lastFlush: this.lastFlushBefore(cut) };
  }

  /** The file as a crash after the first `cut` log entries leaves it, under `policy` for what was not durable. */
  crash(cut: number, policy: CrashPolicy): CrashState {
    const { durable, pending, lastFlush } = this.classify(cut);
    const applied = choose(pending, policy);
    const image = new GrowableBytes(this.baseBytes);
    for (const index of durable) this.apply(image, index, false);
    for (const index of applied) this.apply(image, index, true);
    return { bytes: image.contents(), cut, lastFlush, durable, pending, applied };
  }

  /** Just the bytes of `crash(cut, policy)`. */
  materialize(cut: number, policy: CrashPolicy): Uint8Array {
    return this.crash(cut, policy).bytes;
  }

  private apply(image: GrowableBytes, index: number, unordered: boolean): void {
    const op = this.log[index]!;
    if (op.kind === 'write') image.write(op.bytes, op.offset);
    else if (op.kind === 'deallocate') image.zero(op.offset, op.length);
    else if (op.kind === 'truncate') image.truncate(unordered && op.size >= op.previousSize ? Math.max(op.size, image.length) : op.size);
  }

  private async track(index: number, pending: Promise<void>): Promise<void> {
    this.uncovered.add(index);
    this.inFlight.add(index);
    try {
      await pending;
    } catch (error) {
      // A failed op may have changed some, all or none of its bytes: no flush ever makes it durable, and every
      // later crash may or may not keep it.
      this.uncovered.delete(index);
      throw error;
    } finally {
      this.inFlight.delete(index);
    }
  }

  private accepts(offset: number): boolean {
    return !this.closed && this.capabilities.writable && Number.isSafeInteger(offset) && offset >= 0;
  }

  private checkCut(cut: number): void {
    if (!Number.isSafeInteger(cut) || cut < 0 || cut > this.log.length) {
      throw new DiskError('E_INVALID', `crash point ${cut} is outside the log (0..${this.log.length})`, { file: this.name });
    }
  }
}

type MutableWrite = { -readonly [K in keyof RecordedWrite]: RecordedWrite[K] };
type MutableTruncate = { -readonly [K in keyof RecordedTruncate]: RecordedTruncate[K] };
type MutableDeallocate = { -readonly [K in keyof RecordedDeallocate]: RecordedDeallocate[K] };
type MutableOp = MutableWrite | MutableTruncate | MutableDeallocate | RecordedFlush;

/** The pending ops a policy keeps, in the order it applies them. */
function choose(pending: readonly number[], policy: CrashPolicy): number[] {
  switch (policy.kind) {
    case 'keep-all':
      return [...pending];
    case 'drop-all':
      return [];
    case 'subset': {
      const random = seededRandom(policy.seed);
      const keep = policy.keep ?? 0.5;
      return pending.filter(() => random() < keep);
    }
    case 'reorder': {
      const random = seededRandom(policy.seed);
      const keep = policy.keep ?? 0.5;
      const kept = pending.filter(() => random() < keep);
      for (let i = kept.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [kept[i], kept[j]] = [kept[j]!, kept[i]!];
      }
      // A shuffle may leave the order as it was: then reverse it, so the order always differs.
      if (kept.length > 1 && kept.every((op, i) => i === 0 || op > kept[i - 1]!)) kept.reverse();
      return kept;
    }
    case 'explicit': {
      const allowed = new Set(pending);
      const seen = new Set<number>();
      for (const index of policy.order) {
        if (!allowed.has(index)) throw new DiskError('E_INVALID', `op ${index} is not pending at this crash point`);
        if (seen.has(index)) throw new DiskError('E_INVALID', `op ${index} is listed twice`);
        seen.add(index);
      }
      return [...policy.order];
    }
  }
}

/** mulberry32: a small, fast, seeded generator (deterministic crash tests). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A byte buffer with a length that grows by doubling (for rebuilding files). */
class GrowableBytes {
  private bytes: Uint8Array;
  length: number;

  constructor(initial: Uint8Array) {
    this.bytes = initial.slice();
    this.length = initial.length;
  }

  write(src: Uint8Array, offset: number): void {
    const end = offset + src.length;
    this.reserve(end);
    this.bytes.set(src, offset);
    if (end > this.length) this.length = end;
  }

  /** Zeros inside the current length only (a punched hole keeps the file's size). */
  zero(offset: number, length: number): void {
    if (offset < this.length) this.bytes.fill(0, offset, Math.min(this.length, offset + length));
  }

  truncate(size: number): void {
    if (size < this.length) this.bytes.fill(0, size, this.length);
    else this.reserve(size);
    this.length = size;
  }

  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  private reserve(end: number): void {
    if (end <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(end, this.bytes.length * 2, 4096));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}
