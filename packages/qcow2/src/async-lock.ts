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
 * cluster therefore never race.
 */
export class KeyedClaims {
  private readonly held = new Map<number, Promise<void>>();

  async claim(key: number): Promise<() => void> {
    for (;;) {
      const taken = this.tryClaim(key);
      if (taken !== undefined) return taken;
      await this.held.get(key);
    }
  }

  /** Claims `key` at once when nobody holds it (the releasing function), else undefined: `claim` without a wait. */
  tryClaim(key: number): (() => void) | undefined {
    if (this.held.has(key)) return undefined;
    let release!: () => void;
    this.held.set(key, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.held.delete(key);
      release();
    };
  }

  /** Whether anyone holds `key` (for the write path's fast check). */
  has(key: number): boolean {
    return this.held.has(key);
  }
}
