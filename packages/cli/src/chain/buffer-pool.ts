import { copyBufferBatch } from '../copy-buffers.js';

/**
 * Chunk buffers handed out and given back, so a copy touches the same few megabytes throughout: a fresh 4 MiB
 * array per chunk costs page faults and zero-filling on first touch and garbage collection later, which measured
 * as a third of a rebase's time on 1 GiB chains. Page-aligned: reads into them are the kernel's fast copy. Made
 * a huge page's worth at a time (copyBufferBatch: one fault per 2 MiB where the platform gives huge pages).
 */
export class BufferPool {
  private readonly free: Uint8Array[] = [];

  constructor(private readonly bytes: number) {}

  take(): Uint8Array {
    if (this.free.length === 0) this.free.push(...copyBufferBatch(this.bytes));
    return this.free.pop()!;
  }

  give(buffer: Uint8Array): void {
    this.free.push(buffer);
  }

  /** Runs `use` with a buffer of the pool's size, given back afterwards whatever happens. */
  async with<T>(use: (buffer: Uint8Array) => Promise<T>): Promise<T> {
    const buffer = this.take();
    try {
      return await use(buffer);
    } finally {
      this.give(buffer);
    }
  }
}
