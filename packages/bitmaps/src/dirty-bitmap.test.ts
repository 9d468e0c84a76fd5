import { describe, expect, it } from 'vitest';
import { DirtyBitmap } from './dirty-bitmap.js';

const KiB = 1024;

describe('DirtyBitmap', () => {
  it('marks every granule a range touches, least significant bit first as on disk', () => {
    const bitmap = new DirtyBitmap(1024 * KiB, 64 * KiB);
    bitmap.setRange(64 * KiB - 1, 2); // straddles granules 0 and 1
    bitmap.setRange(9 * 64 * KiB, 1);
    expect(Array.from(bitmap.bytes)).toEqual([0b11, 0b10]);
    expect(bitmap.isDirty(0)).toBe(true);
    expect(bitmap.isDirty(2 * 64 * KiB)).toBe(false);
  });

  it('fills whole bytes for long ranges and keeps the edges exact', () => {
    const bitmap = new DirtyBitmap(100 * 512, 512);
    bitmap.setRange(3 * 512, 40 * 512);
    const set = Array.from({ length: bitmap.bits }, (_, bit) => bitmap.isDirty(bit * 512));
    expect(set.map((dirty, bit) => dirty === (bit >= 3 && bit < 43)).every(Boolean)).toBe(true);
  });

  it('clips ranges to the disk and ignores empty ones, so tail bits stay clear', () => {
    const bitmap = new DirtyBitmap(3 * 512, 512); // 3 bits: byte 0's bits 3-7 are tail
    bitmap.setRange(0, 10 * 512);
    bitmap.setRange(5, 0);
    expect(Array.from(bitmap.bytes)).toEqual([0b111]);
    bitmap.setAll();
    expect(Array.from(bitmap.bytes)).toEqual([0b111]);
  });

  it('reports alternating extents cut to the asked range and the disk end', () => {
    const bitmap = new DirtyBitmap(10 * 4 * KiB + 100, 4 * KiB);
    bitmap.setRange(4 * KiB, 8 * KiB); // granules 1, 2
    bitmap.setRange(10 * 4 * KiB, 1); // the short last granule
    expect(bitmap.extents(0, Infinity)).toEqual([
      { offset: 0, length: 4 * KiB, dirty: false },
      { offset: 4 * KiB, length: 8 * KiB, dirty: true },
      { offset: 12 * KiB, length: 28 * KiB, dirty: false },
      { offset: 40 * KiB, length: 100, dirty: true },
    ]);
    expect(bitmap.extents(5 * KiB, 2 * KiB)).toEqual([{ offset: 5 * KiB, length: 2 * KiB, dirty: true }]);
    expect(bitmap.extents(50 * KiB, 10)).toEqual([]);
  });

  it('skips whole clean and dirty bytes in long runs', () => {
    const bitmap = new DirtyBitmap(2 ** 40, 64 * KiB); // 16 Mi bits, 2 MiB
    bitmap.setRange(2 ** 39, 2 ** 20);
    expect(bitmap.extents(0, 2 ** 40)).toEqual([
      { offset: 0, length: 2 ** 39, dirty: false },
      { offset: 2 ** 39, length: 2 ** 20, dirty: true },
      { offset: 2 ** 39 + 2 ** 20, length: 2 ** 39 - 2 ** 20, dirty: false },
    ]);
  });

  it('merges bitmaps of the same or another granularity', () => {
    const target = new DirtyBitmap(1024 * KiB, 64 * KiB);
    const fine = new DirtyBitmap(1024 * KiB, 4 * KiB);
    fine.setRange(70 * KiB, 1);
    target.merge(fine);
    expect(target.extents(0, 1024 * KiB).filter((e) => e.dirty)).toEqual([{ offset: 64 * KiB, length: 64 * KiB, dirty: true }]);
    const same = new DirtyBitmap(1024 * KiB, 64 * KiB);
    same.setRange(0, 1);
    target.merge(same);
    expect(Array.from(target.bytes)).toEqual([0b11, 0]);
    expect(() => target.merge(new DirtyBitmap(512, 512))).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('refuses granularities that are not powers of two and bitmaps past QEMU limit, with typed errors', () => {
    expect(() => new DirtyBitmap(KiB, 3000)).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
    expect(() => new DirtyBitmap(2 ** 53 - 1, 512)).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
  });

  it('clears from a bit on, mid-byte and past the end', () => {
    const bitmap = new DirtyBitmap(20 * 512, 512);
    bitmap.setAll();
    bitmap.clearFrom(11);
    expect(Array.from(bitmap.bytes)).toEqual([0xff, 0b111, 0]);
    bitmap.clearFrom(100);
    expect(Array.from(bitmap.bytes)).toEqual([0xff, 0b111, 0]);
  });
});
