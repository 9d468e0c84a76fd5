/** Where the poller gets its time and how it runs its next turn (injected by tests). */
export interface BusyPollClock {
  /** Monotonic time in nanoseconds. */
  now(): bigint;
  /** Runs `turn` after the event loop has polled for I/O once without blocking (Node: setImmediate). */
  later(turn: () => void): void;
}

/** The shortest window a poller grows back to after it stopped polling. */
const MIN_WINDOW_NS = 4_000n;

/**
 * Keeps the server's event loop polling for a short window after each reply instead of sleeping in epoll_wait, the
 * way QEMU's event loop polls before it blocks (its adaptive `poll-max-ns`). On a virtual machine a thread that
 * sleeps costs the next request a wake-up of its virtual CPU, tens of microseconds: at queue depth 1 most of a
 * request's time (fio 4 KiB random reads on this project's 2-vCPU VM: 12k IOPS sleeping, up to 20k polling
 * 100 us; qemu-nbd 16-19k).
 *
 * The window adapts as QEMU's does, by how long the loop slept before the next request came: under `maxMicros`
 * (polling that much longer would have caught it) the window doubles, from 4 us up to `maxMicros`; longer (the
 * client is slow) it halves, down to nothing. Requests that come while it polls leave it as it is. So a client
 * that pauses costs a few windows of polling, an idle server none, and a busy one never sleeps.
 */
export class BusyPoll {
  private readonly maxNs: bigint;
  private windowNs: bigint;
  /** When the loop last went to sleep (polling ended, or activity with no window); -1n: never. */
  private sleptAt = -1n;
  /** When the current window started: the first turn after the last activity (-1n: at the next turn). */
  private since = -1n;
  private polling = false;

  constructor(
    maxMicros: number,
    private readonly clock: BusyPollClock = nodeClock,
  ) {
    this.maxNs = BigInt(Math.max(0, Math.round(maxMicros))) * 1000n;
    this.windowNs = this.maxNs;
  }

  /** The current window, in microseconds (for tests and logs). */
  get windowMicros(): number {
    return Number(this.windowNs / 1000n);
  }

  /** A request was answered (or arrived): poll for the next one. */
  activity(): void {
    if (this.maxNs === 0n) return;
    const now = this.clock.now();
    if (!this.polling && this.sleptAt >= 0n) {
      const doubled = this.windowNs * 2n < MIN_WINDOW_NS ? MIN_WINDOW_NS : this.windowNs * 2n;
      const halved = this.windowNs / 2n < MIN_WINDOW_NS ? 0n : this.windowNs / 2n;
      this.windowNs = now - this.sleptAt < this.maxNs ? (doubled > this.maxNs ? this.maxNs : doubled) : halved;
    }
    // The window counts from the first turn after this: the rest of this turn of the event loop (the reply's
    // writev, other callbacks) may take longer than a short window.
    this.since = -1n;
    if (this.polling) return;
    if (this.windowNs === 0n) {
      this.sleptAt = now;
      return;
    }
    this.polling = true;
    this.clock.later(this.turn);
  }

  private readonly turn = (): void => {
    const now = this.clock.now();
    if (this.since < 0n) this.since = now;
    if (now - this.since < this.windowNs) {
      this.clock.later(this.turn);
      return;
    }
    this.polling = false;
    this.sleptAt = now;
  };
}

const nodeClock: BusyPollClock = {
  now: () => process.hrtime.bigint(),
  later: (turn) => void setImmediate(turn),
};
