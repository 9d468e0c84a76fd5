import { describe, expect, it } from 'vitest';
import { ddOutputBytes, parseDdOperands } from './dd-operands.js';

describe('parseDdOperands', () => {
  it('reads sizes with suffixes, hex and fractions; the last of a repeated key wins', () => {
    expect(parseDdOperands(['if=a', 'of=b', 'bs=1.5k', 'count=0x10', 'skip=2', 'bs=4k'])).toEqual({
      input: 'a',
      output: 'b',
      blockSize: 4096,
      count: 16,
      skip: 2,
    });
    expect(parseDdOperands(['if=a', 'of=b'])).toEqual({ input: 'a', output: 'b', blockSize: 512, count: undefined, skip: 0 });
  });

  it('refuses as qemu-img dd does, the first bad operand first', () => {
    expect(() => parseDdOperands(['if=a'])).toThrow('Must specify both input and output files');
    expect(() => parseDdOperands(['foo=1', 'bs=0'])).toThrow('unrecognized operand foo');
    expect(() => parseDdOperands(['bs=0', 'foo=1'])).toThrow('Invalid bs specified. Must be between 1 and 2147483647.');
    expect(() => parseDdOperands(['if=a', 'of=b', 'bogus'])).toThrow('unrecognized operand bogus');
    expect(() => parseDdOperands(['bs=2147483648'])).toThrow('Must be between 1 and 2147483647');
    for (const bad of ['bs=1x', 'bs=', 'bs=-1', 'count=abc', 'skip=-1']) {
      expect(() => parseDdOperands([bad]), bad).toThrow(/^Invalid (bs|count|skip) specified. You may use k, M, G, T, P or E suffixes for\n/);
    }
  });
});

describe('ddOutputBytes', () => {
  const at = (bs: number, count: number | undefined, skip: number, size: number): number =>
    ddOutputBytes({ input: 'a', output: 'b', blockSize: bs, count, skip }, size);

  it('matches what qemu-img dd 7.2 gave for a 100000-byte raw input (seen as 100352)', () => {
    expect(at(1000, 7, 2, 100000)).toBe(5000);
    expect(at(1024, undefined, 2, 100000)).toBe(98304);
    expect(at(1024, 1000, 0, 100000)).toBe(100352);
    expect(at(1000, 200, 3, 100000)).toBe(97352);
    expect(at(1000, 3, 3, 100000)).toBe(0);
    expect(at(1000, 1, 3, 100000)).toBeLessThan(0);
    expect(at(512, undefined, 1000, 100000)).toBeLessThan(0);
    expect(at(4096, 10, 3, 1 << 20)).toBe(28672);
  });
});
