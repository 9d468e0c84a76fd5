import { describe, expect, it } from 'vitest';
import { fixed3, ioSize } from './io-report.js';

describe('qemu-io sizes', () => {
  it('rounds an exact half to even, as printf does', () => {
    expect(fixed3(2.0625)).toBe('2.062');
    expect(fixed3(2.0635)).toBe(2.0635.toFixed(3));
    expect(ioSize(0x210000)).toBe('2.062 MiB');
    expect(ioSize(1.6875 * 2 ** 20)).toBe('1.688 MiB');
    expect(ioSize(5632)).toBe('5.500 KiB');
    expect(ioSize(512)).toBe('512 bytes');
  });
});
