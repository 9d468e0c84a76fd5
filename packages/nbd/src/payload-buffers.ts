import { alignedBytes } from '@q/raw';

/**
 * WRITE payloads at least this long are read into pooled buffers. Smaller ones mostly arrive inside one received
 * chunk, which ByteReader hands out as a view without copying, and cost little to allocate when they do not.
 */
export const POOLED_PAYLOAD = 64 * 1024;

/**
 * Reusable buffers for one connection's large WRITE payloads. A fresh 1 MiB Uint8Array costs more than the copy
 * into it: the memory comes zeroed from new pages, and on a VM each page's first touch is a fault (measured here:
 * 120-140 us per fresh 1 MiB buffer filled from received chunks against 32 us into a reused one, at a 1 MiB QD1
 * write's budget of ~800 us). Buffers are kept by power-of-two capacity, at most `maxKept` bytes in all, so a
 * client that once sent huge writes does not pin that memory for the connection's life.
 */
export class PayloadBuffers {
  /** Whole buffers (views of `capacity` bytes) by capacity. */
  private readonly free = new Map<number, Uint8Array[]>();
  private kept = 0;

  constructor(private readonly maxKept: number) {}

  /** A buffer of exactly `length` bytes (contents undefined), or undefined below POOLED_PAYLOAD. */
  take(length: number): Uint8Array | undefined {
    if (length < POOLED_PAYLOAD) return undefined;
    const capacity = 2 ** Math.ceil(Math.log2(length));
    const reused = this.free.get(capacity)?.pop();
    // Page-aligned: a READ reply is a read from the page cache into it, which the kernel copies 4x faster there.
    if (reused === undefined) return alignedBytes(capacity).subarray(0, length);
    this.kept -= capacity;
    return reused.subarray(0, length);
  }

  /**
   * Takes back a buffer from `take`. Only once nothing uses it any more: a device call that failed may still
   * have parts of its I/O running on the buffer, so its caller must not give it back.
   */
  give(payload: Uint8Array): void {
    // The view runs from where `take` started it to the end of its array (alignedBytes: exactly the capacity).
    const capacity = payload.buffer.byteLength - payload.byteOffset;
    if (this.kept + capacity > this.maxKept) return;
    const whole = new Uint8Array(payload.buffer, payload.byteOffset, capacity);
    const list = this.free.get(capacity);
    if (list === undefined) this.free.set(capacity, [whole]);
    else list.push(whole);
    this.kept += capacity;
  }
}

/**
 * The pooled buffers of one request (its WRITE payload, its READ reply's data), given back together once the
 * request succeeded and its reply has left: until then the device or the socket may still use them.
 */
export class BufferLease {
  /** Made on the first pooled take: most requests (4 KiB reads and writes) take none. */
  private taken: Uint8Array[] | undefined;

  constructor(private readonly pool: PayloadBuffers) {}

  /** A buffer of exactly `length` bytes whose contents are undefined (the caller fills all of it). */
  take(length: number): Uint8Array {
    const pooled = this.pool.take(length);
    if (pooled === undefined) return new Uint8Array(length);
    (this.taken ??= []).push(pooled);
    return pooled;
  }

  /** Whether any buffer came from the pool (so the lease is worth giving back). */
  get holds(): boolean {
    return this.taken !== undefined;
  }

  giveBack(): void {
    for (const buffer of this.taken ?? []) this.pool.give(buffer);
    this.taken = undefined;
  }
}
