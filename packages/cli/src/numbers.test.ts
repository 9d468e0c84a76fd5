import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from './numbers.js';

describe('parseSize (qemu cvtnum)', () => {
  it('reads plain, hex and suffixed sizes', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('0x10000')).toBe(65536);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('1M')).toBe(1 << 20);
    expect(parseSize('1.5G')).toBe(1.5 * 2 ** 30);
    expect(parseSize('16T')).toBe(16 * 2 ** 40);
  });

  it('refuses garbage', () => {
    expect(() => parseSize('12q')).toThrow(/invalid/);
    expect(() => parseSize('-1')).toThrow(/invalid/);
    expect(() => parseSize('1.3')).toThrow(/whole number/);
  });
});

describe('formatSize (qemu size_to_str)', () => {
  it('matches what qemu-img info prints', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(200704)).toBe('196 KiB');
    expect(formatSize(2 ** 30)).toBe('1 GiB');
    expect(formatSize(104857600)).toBe('100 MiB');
    expect(formatSize(1000 * 1024)).toBe('0.977 MiB');
    expect(formatSize(1.5 * 2 ** 30)).toBe('1.5 GiB');
    expect(formatSize(16 * 2 ** 40)).toBe('16 TiB');
  });
});
