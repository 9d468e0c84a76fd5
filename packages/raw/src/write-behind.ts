import { startWriteback } from '@q/posix';

/**
 * Write-behind for a file written in bulk and flushed at the end (a copy's target on a disk): once `every` bytes
 * have been written since the last time, the kernel is asked to start writing the range they span to the device
 * (startWriteback), so the device works while the copy goes on instead of all at the final fdatasync. The kernel's
 * own background write-back starts only when a tenth of memory is dirty: a commit of 256 MiB left every byte to
 * its flush (ext4 on this VM: 256 MiB written in 30-50 ms, then an fdatasync of 150-180 ms).
 *
 * One hint at a time: the call runs on a worker thread and can wait for the device's queue, and a slow device must
 * not fill the thread pool with waiting hints (ranges written meanwhile go into the next one). Nothing here is
 * needed for correctness: a failed hint is dropped, and durability is the flush's as ever.
 */
export class WriteBehind {
  private low = Infinity;
  private high = 0;
  private bytes = 0;
  private inFlight: Promise<void> | undefined;

  /** `hint` asks the kernel to start writing a range (startWriteback; tests pass their own). */
  constructor(
    private readonly fd: number,
    private readonly every: number,
    private readonly hint: (fd: number, offset: number, length: number) => Promise<boolean> = startWriteback,
  ) {}

  /** Counts `length` bytes just written at `offset` (after the write returned: their pages are dirty now). */
  written(offset: number, length: number): void {
    this.low = Math.min(this.low, offset);
    this.high = Math.max(this.high, offset + length);
    this.bytes += length;
    if (this.bytes >= this.every && this.inFlight === undefined) this.start();
  }

  /** Resolves once no hint is running (before the descriptor is closed: a hint must not reach a reused number). */
  async settled(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private start(): void {
    const low = this.low;
    const length = this.high - low;
    this.low = Infinity;
    this.high = 0;
    this.bytes = 0;
    this.inFlight = this.hint(this.fd, low, length).then(() => {
      this.inFlight = undefined;
      if (this.bytes >= this.every) this.start();
    });
  }
}
