import { describe, expect, it } from 'vitest';
import { ALIGNED_MIN_BYTES, alignedBytes, alignedSharedBuffer } from './aligned-bytes.js';

describe('alignedBytes', () => {
  it('gives a zeroed, writable view of exactly the length asked, at the start of its own memory', () => {
    const bytes = alignedBytes(ALIGNED_MIN_BYTES * 3 + 100);
    expect(bytes.length).toBe(ALIGNED_MIN_BYTES * 3 + 100);
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength % 65536).toBe(0);
    expect(bytes.every((b) => b === 0)).toBe(true);
    bytes.fill(7);
    expect(bytes[bytes.length - 1]).toBe(7);
    // Each buffer is its own memory: filling one leaves another untouched.
    expect(alignedBytes(ALIGNED_MIN_BYTES).every((b) => b === 0)).toBe(true);
  });

  it('keeps small buffers ordinary arrays', () => {
    const small = alignedBytes(4096);
    expect(small.length).toBe(4096);
    expect(small.buffer.byteLength).toBe(4096);
  });

  it('gives shared memory that Atomics work on, rounded up to whole 64 KiB pages', () => {
    const shared = alignedSharedBuffer(100_000);
    expect(shared).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.byteLength).toBe(131072);
    const words = new Int32Array(shared);
    expect(Atomics.add(words, 1, 5)).toBe(0);
    expect(Atomics.load(words, 1)).toBe(5);
  });
});
