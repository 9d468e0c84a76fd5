/**
 * Decides whether a write (under 2 MiB) to a file on a device may run as a blocking call on an event loop that
 * serves clients (NodeFileOptions.blocking 'nowait'). A buffered write normally only copies into the page cache
 * (microseconds; ~250 for 1 MiB: less than a trip to libuv's thread pool and back), but the kernel can make it
 * wait: dirty-page throttling, a journal commit. Linux cannot say beforehand (pwritev2's RWF_NOWAIT is
 * EOPNOTSUPP for buffered writes on ext4), so each inline write is timed, and one that took longer than STALL_MS
 * sends writes to the pool for a while: a second, doubled for every stall within a minute of the end of the last
 * penalty (at most 64 s). The event loop thus waits at most once per penalty, never write after write while the
 * disk is behind.
 */
export const STALL_MS = 1;
const FIRST_PENALTY_MS = 1000;
const MAX_PENALTY_MS = 64_000;
const REPEAT_WINDOW_MS = 60_000;

export class WriteStallGuard {
  /** Writes go to the pool until then (a time of `now`); the end of the last penalty. */
  private poolUntil = -Infinity;
  private waiting = false;
  private penalty = FIRST_PENALTY_MS;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Whether the next write may block this thread (no stall is being waited out). */
  inline(): boolean {
    return !this.waiting || (this.now() >= this.poolUntil && this.resume());
  }

  /** Runs `write` inline, timing it; a stall puts the following writes on the pool. */
  timed<T>(write: () => T): T {
    const start = this.now();
    try {
      return write();
    } finally {
      const end = this.now();
      if (end - start > STALL_MS) this.stalled(end);
    }
  }

  private stalled(at: number): void {
    this.penalty = at - this.poolUntil < REPEAT_WINDOW_MS ? Math.min(this.penalty * 2, MAX_PENALTY_MS) : FIRST_PENALTY_MS;
    this.poolUntil = at + this.penalty;
    this.waiting = true;
  }

  private resume(): true {
    this.waiting = false;
    return true;
  }
}
