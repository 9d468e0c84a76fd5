import { describe, expect, it } from 'vitest';
import { altHex, fixed2, hex, u64 } from './printf.js';

describe('printf conversions as glibc prints them', () => {
  it('%0.2f rounds exact ties to even, like glibc (JavaScript toFixed rounds them up)', () => {
    expect(fixed2(3.125)).toBe('3.12');
    expect(fixed2(0.375)).toBe('0.38');
    expect(fixed2(0.625)).toBe('0.62');
    expect(fixed2((2 * 100) / 64)).toBe('3.12');
    expect(fixed2((1 * 100) / 64)).toBe('1.56');
  });

  it('%0.2f rounds non-ties to nearest', () => {
    expect(fixed2(100 / 3)).toBe('33.33');
    expect(fixed2(200 / 3)).toBe('66.67');
    expect(fixed2(80.25)).toBe('80.25');
    expect(fixed2(12.5)).toBe('12.50');
    expect(fixed2(0)).toBe('0.00');
    expect(fixed2(100)).toBe('100.00');
    expect(fixed2(99.999)).toBe('100.00');
    expect(fixed2(9.995)).toBe('9.99'); // 9.995 is stored as 9.99499999...
    expect(fixed2((65 * 100) / 81)).toBe('80.25');
  });

  it('hex forms', () => {
    expect(hex(0x30200)).toBe('30200');
    expect(altHex(0)).toBe('0');
    expect(altHex(0x20200)).toBe('0x20200');
    expect(hex(u64(0x8000_0000, 0x0005_0000))).toBe('8000000000050000');
  });
});
