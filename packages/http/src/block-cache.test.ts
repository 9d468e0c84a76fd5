import { describe, expect, it } from 'vitest';
import { BlockCache } from './block-cache.js';

describe('BlockCache', () => {
  const block = (value: number, length = 100): Uint8Array => new Uint8Array(length).fill(value);

  it('keeps blocks within its byte budget, evicting the least recently used first', () => {
    const cache = new BlockCache(300);
    cache.set(1, block(1));
    cache.set(2, block(2));
    cache.set(3, block(3));
    expect(cache.get(1)?.[0]).toBe(1);
    cache.set(4, block(4));
    // 2 was used least recently (1 was read after it was put).
    expect(cache.get(2)).toBeUndefined();
    expect([1, 3, 4].map((index) => cache.get(index)?.[0])).toEqual([1, 3, 4]);
    expect(cache.bytes).toBe(300);
  });

  it('counts a replaced block once, keeps nothing bigger than the budget, and keeps nothing with budget 0', () => {
    const cache = new BlockCache(250);
    cache.set(1, block(1));
    cache.set(1, block(9, 150));
    expect(cache.bytes).toBe(150);
    cache.set(2, block(2, 300));
    expect(cache.get(2)).toBeUndefined();
    expect(cache.get(1)?.[0]).toBe(9);
    const none = new BlockCache(0);
    none.set(1, block(1));
    expect(none.count).toBe(0);
  });
});
