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
 * client is slow) it halves, down to nothing. Requests that come while it polls leave it as it is. It polls only
 * while no request runs: a spinning loop would take the CPU from a request's work on another thread (1 MiB writes
 * at queue depth 1 went 0.65x of qemu-nbd when it polled through them). So a client that pauses costs a few
 * windows of polling, and an idle server none.
 */
export class BusyPoll {
  private readonly maxNs: bigint;
  private windowNs: bigint;
  /** When the loop last went to sleep (polling ended, or a reply with no window); -1n: not asleep. */
  private sleptAt = -1n;
  /** When the current window started: the first turn after the last reply (-1n: at the next turn). */
  private since = -1n;
  private polling = false;
  /** A turn is queued: one chain of turns at a time, even when polling stops and starts again before it runs. */
  private queued = false;
  /** Requests started and not answered yet. */
  private running = 0;

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

  /**
   * A request arrived and runs: polling stops (it found what it waited for, or the request's work, a write on
   * libuv's pool say, needs the CPU more than a spinning loop does). The window adapts here, by how long the loop
   * slept before this request came.
   */
  started(): void {
    if (this.maxNs === 0n) return;
    this.running++;
    if (this.polling) {
      this.polling = false;
      return;
    }
    if (this.sleptAt < 0n) return;
    const slept = this.clock.now() - this.sleptAt;
    this.sleptAt = -1n;
    const doubled = this.windowNs * 2n < MIN_WINDOW_NS ? MIN_WINDOW_NS : this.windowNs * 2n;
    const halved = this.windowNs / 2n < MIN_WINDOW_NS ? 0n : this.windowNs / 2n;
    this.windowNs = slept < this.maxNs ? (doubled > this.maxNs ? this.maxNs : doubled) : halved;
  }

  /** `count` started requests will never reply (their connection ended): they no longer hold polling off. */
  abandoned(count: number): void {
    this.running = Math.max(0, this.running - count);
  }

  /** A reply went out: once no request runs, poll for the next one for the window. */
  activity(): void {
    if (this.maxNs === 0n) return;
    if (this.running > 0) this.running--;
    if (this.running > 0 || this.polling) return;
    if (this.windowNs === 0n) {
      this.sleptAt = this.clock.now();
      return;
    }
    // The window counts from the first turn after this: the rest of this turn of the event loop (the reply's
    // writev, other callbacks) may take longer than a short window.
    this.since = -1n;
    this.polling = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    this.clock.later(this.turn);
  }

  private readonly turn = (): void => {
    this.queued = false;
    if (!this.polling) return;
    const now = this.clock.now();
    if (this.since < 0n) this.since = now;
    if (now - this.since < this.windowNs) {
      this.schedule();
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
