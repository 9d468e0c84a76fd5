import { describe, expect, it } from 'vitest';
import { MemoryDirtyBitmap } from './memory-dirty-bitmap.js';

const G = 65536;

/** A bitmap of a `size`-byte disk at 64 KiB granularity with the given granules set (bit i of byte i/8, LSB first). */
function bitmap(size: number, dirty: number[], enabled = true): MemoryDirtyBitmap {
  const bits = new Uint8Array(Math.ceil(size / G / 8));
  for (const granule of dirty) bits[granule >> 3]! |= 1 << (granule & 7);
  return new MemoryDirtyBitmap({ name: 'b', granularity: G, enabled, bits }, size);
}

describe('MemoryDirtyBitmap', () => {
  it('gives runs in bytes, clipped to the range and the disk, whole clean bytes at a time', async () => {
    const map = bitmap(64 * G + 100, [1, 2, 9, 64]);
    expect(await map.dirtyExtents(0, 64 * G + 100)).toEqual([
      { offset: 0, length: G, dirty: false },
      { offset: G, length: 2 * G, dirty: true },
      { offset: 3 * G, length: 6 * G, dirty: false },
      { offset: 9 * G, length: G, dirty: true },
      { offset: 10 * G, length: 54 * G, dirty: false },
      { offset: 64 * G, length: 100, dirty: true },
    ]);
    expect(await map.dirtyExtents(G + 10, G)).toEqual([{ offset: G + 10, length: G, dirty: true }]);
    expect(await map.dirtyExtents(64 * G, 1 << 30)).toEqual([{ offset: 64 * G, length: 100, dirty: true }]);
  });

  it('marks every granule a change touches, and nothing when disabled', async () => {
    const map = bitmap(16 * G, []);
    map.markDirty(3 * G - 1, 2);
    map.markDirty(15 * G + 5, 1 << 30);
    expect(await map.dirtyExtents(0, 16 * G)).toEqual([
      { offset: 0, length: 2 * G, dirty: false },
      { offset: 2 * G, length: 2 * G, dirty: true },
      { offset: 4 * G, length: 11 * G, dirty: false },
      { offset: 15 * G, length: G, dirty: true },
    ]);
    const disabled = bitmap(16 * G, [], false);
    disabled.markDirty(0, 16 * G);
    expect(await disabled.dirtyExtents(0, 16 * G)).toEqual([{ offset: 0, length: 16 * G, dirty: false }]);
  });
});
