interface HeldRange {
  start: number;
  end: number;
  released: Promise<void>;
}

/**
 * Lets one holder at a time into overlapping byte ranges. A read-modify-write of a partial block must not
 * interleave with another write into the same block, or one of them is lost: the second would write back the
 * block as it was before the first. Writes into disjoint blocks still run side by side.
 */
export class RangeLock {
  private readonly held = new Set<HeldRange>();

  /** Waits until nothing held overlaps `[start, end)`, takes it, and returns the function that releases it. */
  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      let blocker: HeldRange | undefined;
      for (const range of this.held) {
        if (range.start < end && start < range.end) {
          blocker = range;
          break;
        }
      }
      if (blocker === undefined) break;
      await blocker.released;
    }
    let release: () => void = () => {};
    const range: HeldRange = { start, end, released: new Promise<void>((resolve) => (release = resolve)) };
    this.held.add(range);
    return () => {
      this.held.delete(range);
      release();
    };
  }
}
