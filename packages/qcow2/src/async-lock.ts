/**
 * A FIFO mutex for async code: metadata changes (allocation, L2 and refcount updates, table switches) run one at
 * a time, in the order they asked, while data I/O proceeds outside it.
 */
export class AsyncLock {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * Per-key exclusive claims: while one request changes a cluster's mapping (allocates it, zeroes it, discards
 * it), another request for the same cluster waits, then finds the new mapping. Two allocating writes to one
 * cluster therefore never race. A range of keys can be claimed as one (zeroing or discarding whole L2 tables at
 * once): one record for the range, not one per key.
 */
export class KeyedClaims {
  private readonly held = new Map<number, Promise<void>>();
  /** Claimed ranges `[first, end)`: few at a time (one per bulk change in flight). */
  private readonly ranges = new Set<{ first: number; end: number; done: Promise<void> }>();

  async claim(key: number): Promise<() => void> {
    for (;;) {
      const taken = this.tryClaim(key);
      if (taken !== undefined) return taken;
      await this.holder(key);
    }
  }

  /** Claims `key` at once when nobody holds it (the releasing function), else undefined: `claim` without a wait. */
  tryClaim(key: number): (() => void) | undefined {
    if (this.holder(key) !== undefined) return undefined;
    let release!: () => void;
    this.held.set(key, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.held.delete(key);
      release();
    };
  }

  /**
   * Claims every key of `[first, end)`. It waits until none of them is held, and takes nothing before that: a
   * caller holding claims (a run of whole-cluster writes takes its clusters one by one, ascending) never waits on
   * a range that waits on it. Checking the held keys costs one pass over the claims in flight.
   */
  async claimRange(first: number, end: number): Promise<() => void> {
    for (let busy = this.rangeHolder(first, end); busy !== undefined; busy = this.rangeHolder(first, end)) await busy;
    let release!: () => void;
    const range = { first, end, done: new Promise<void>((resolve) => (release = resolve)) };
    this.ranges.add(range);
    return () => {
      this.ranges.delete(range);
      release();
    };
  }

  /** Whether anyone holds `key` (for the write path's fast check). */
  has(key: number): boolean {
    return this.holder(key) !== undefined;
  }

  /** What to wait for before `key` can be claimed: its claim, or a claimed range holding it. */
  private holder(key: number): Promise<void> | undefined {
    const single = this.held.get(key);
    if (single !== undefined || this.ranges.size === 0) return single;
    for (const range of this.ranges) if (key >= range.first && key < range.end) return range.done;
    return undefined;
  }

  private rangeHolder(first: number, end: number): Promise<void> | undefined {
    for (const range of this.ranges) if (range.first < end && first < range.end) return range.done;
    for (const [key, done] of this.held) if (key >= first && key < end) return done;
    return undefined;
  }
}
