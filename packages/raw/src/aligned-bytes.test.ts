import { describe, expect, it } from 'vitest';
import { ALIGNED_MIN_BYTES, ALIGNED_VIEW_OFFSET, alignedBytes } from './aligned-bytes.js';

describe('alignedBytes', () => {
  it('gives a zeroed, writable view of exactly the length asked, one page minus malloc header into its array', () => {
    const bytes = alignedBytes(ALIGNED_MIN_BYTES * 3 + 100);
    expect(bytes.length).toBe(ALIGNED_MIN_BYTES * 3 + 100);
    expect(bytes.byteOffset).toBe(ALIGNED_VIEW_OFFSET);
    expect(bytes.buffer.byteLength).toBe(ALIGNED_VIEW_OFFSET + bytes.length);
    expect(bytes.every((b) => b === 0)).toBe(true);
    bytes.fill(7);
    expect(bytes[bytes.length - 1]).toBe(7);
  });

  it('keeps small buffers ordinary arrays', () => {
    const small = alignedBytes(4096);
    expect(small.length).toBe(4096);
    expect(small.byteOffset).toBe(0);
    expect(small.buffer.byteLength).toBe(4096);
  });
});
