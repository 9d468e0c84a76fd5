import { describe, expect, it } from 'vitest';
import { POOLED_PAYLOAD, PayloadBuffers } from './payload-buffers.js';

describe('PayloadBuffers', () => {
  it('leaves payloads below the pooled size to the reader', () => {
    expect(new PayloadBuffers(1 << 20).take(POOLED_PAYLOAD - 1)).toBeUndefined();
  });

  it('hands a given-back buffer out again for a payload of the same power-of-two class', () => {
    const pool = new PayloadBuffers(4 << 20);
    const first = pool.take(1 << 20)!;
    expect(first.length).toBe(1 << 20);
    pool.give(first);
    const second = pool.take((1 << 20) - 512)!;
    expect(second.length).toBe((1 << 20) - 512);
    expect(second.buffer).toBe(first.buffer);
    // The same place in it (page-aligned, see alignedBytes), and the whole capacity again when it fits.
    expect(second.byteOffset).toBe(first.byteOffset);
    pool.give(second);
    expect(pool.take(1 << 20)!.length).toBe(1 << 20);
    // A different class gets a buffer of its own.
    expect(pool.take(128 * 1024)!.buffer).not.toBe(first.buffer);
  });

  it('keeps no more than its limit: a buffer past it is left to the garbage collector', () => {
    const pool = new PayloadBuffers(1 << 20);
    const a = pool.take(1 << 20)!;
    const b = pool.take(1 << 20)!;
    pool.give(a);
    pool.give(b);
    expect(pool.take(1 << 20)!.buffer).toBe(a.buffer);
    expect(pool.take(1 << 20)!.buffer).not.toBe(b.buffer);
  });

  it('never hands out the same buffer twice before it comes back', () => {
    const pool = new PayloadBuffers(8 << 20);
    const taken = [pool.take(POOLED_PAYLOAD)!, pool.take(POOLED_PAYLOAD)!];
    expect(taken[0]!.buffer).not.toBe(taken[1]!.buffer);
  });
});
