import type { BlockCache } from './block-cache.js';

/** Where blocks come from: bytes `start` to `end` of the file, exactly. */
export interface RangeSource {
  fetch(start: number, end: number): Promise<Uint8Array>;
}

export interface BlockFetcherOptions {
  readonly blockSize: number;
  readonly maxRequestBytes: number;
  readonly maxConcurrentRequests: number;
  readonly coalesceDelayMs: number;
}

interface Waiter {
  readonly promise: Promise<Uint8Array>;
  resolve(block: Uint8Array): void;
  reject(error: unknown): void;
}

/**
 * Hands out the blocks of a file, fetching what the cache lacks. Blocks asked for in the same turn of the event
 * loop (the engine reads every cluster of a guest request at once) wait together and leave as one request per
 * run of neighbouring blocks, up to `maxRequestBytes`; a block already on its way is shared, not fetched twice.
 * At most `maxConcurrentRequests` requests are in flight, so memory stays bounded by what callers asked for.
 */
export class BlockFetcher {
  /** Blocks asked for and not yet arrived: queued or in flight. */
  private readonly waiting = new Map<number, Waiter>();
  private queued: number[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private active = 0;
  private readonly slots: (() => void)[] = [];
  private closedWith: unknown;

  constructor(
    private readonly source: RangeSource,
    private readonly size: number,
    private readonly cache: BlockCache,
    private readonly options: BlockFetcherOptions,
  ) {}

  /** The block at `index` (shorter than blockSize only at the end of the file). */
  block(index: number): Promise<Uint8Array> {
    const cached = this.cache.get(index);
    if (cached !== undefined) return Promise.resolve(cached);
    const waiting = this.waiting.get(index);
    if (waiting !== undefined) return waiting.promise;
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    const waiter = deferred();
    this.waiting.set(index, waiter);
    this.queued.push(index);
    this.timer ??= setTimeout(() => this.dispatch(), this.options.coalesceDelayMs);
    return waiter.promise;
  }

  /** Fails every block not yet fetched with `error` and drops the cache; requests in flight are the source's to abort. */
  close(error: unknown): void {
    this.closedWith = error;
    this.cache.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const index of this.queued) {
      this.waiting.get(index)?.reject(error);
      this.waiting.delete(index);
    }
    this.queued = [];
    for (const wake of this.slots.splice(0)) wake();
  }

  /** Sends what was queued as runs of neighbouring blocks. */
  private dispatch(): void {
    this.timer = undefined;
    const indexes = this.queued.sort((a, b) => a - b);
    this.queued = [];
    const most = Math.max(1, Math.floor(this.options.maxRequestBytes / this.options.blockSize));
    let first = 0;
    for (let i = 1; i <= indexes.length; i++) {
      const runEnds = i === indexes.length || indexes[i] !== indexes[i - 1]! + 1 || i - first === most;
      if (runEnds) {
        void this.fetchRun(indexes[first]!, i - first);
        first = i;
      }
    }
  }

  private async fetchRun(firstIndex: number, count: number): Promise<void> {
    const { blockSize } = this.options;
    const indexes = Array.from({ length: count }, (_, i) => firstIndex + i);
    try {
      await this.acquire();
      if (this.closedWith !== undefined) throw this.closedWith;
      const start = firstIndex * blockSize;
      const bytes = await this.source.fetch(start, Math.min(this.size, start + count * blockSize));
      for (const index of indexes) {
        // A copy per block: a view would keep the whole run's buffer alive behind one cached block.
        const block = bytes.slice((index - firstIndex) * blockSize, (index - firstIndex + 1) * blockSize);
        this.cache.set(index, block);
        this.waiting.get(index)?.resolve(block);
      }
    } catch (error) {
      for (const index of indexes) this.waiting.get(index)?.reject(error);
    } finally {
      for (const index of indexes) this.waiting.delete(index);
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.options.maxConcurrentRequests || this.closedWith !== undefined) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.slots.push(() => {
        this.active++;
        resolve();
      }),
    );
  }

  private release(): void {
    this.active--;
    this.slots.shift()?.();
  }
}

function deferred(): Waiter {
  let resolve!: (block: Uint8Array) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Uint8Array>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
