import { describe, expect, it } from 'vitest';
import { checkArgumentCount, ioNumber, offsetAndLengths } from './io-args.js';

describe('qemu-io argument rules', () => {
  it('reads numbers with suffixes and refuses the rest in qemu-io words', () => {
    expect(ioNumber('64k')).toBe(65536);
    expect(ioNumber('0x200')).toBe(512);
    expect(() => ioNumber('x')).toThrow('Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- x');
  });

  it('words the argument count as qemu-io does', () => {
    expect(() => checkArgumentCount('read', 1, 2, -1)).toThrow('bad argument count 1 to read, expected at least 2 arguments');
    expect(() => checkArgumentCount('length', 1, 0, 0)).toThrow('bad argument count 1 to length, expected 0 arguments');
    expect(() => checkArgumentCount('alloc', 0, 1, 2)).toThrow('bad argument count 0 to alloc, expected between 1 and 2 arguments');
    expect(() => checkArgumentCount('alloc', 2, 1, 2)).not.toThrow();
  });

  it('sums vectored lengths', () => {
    expect(offsetAndLengths(['128k', '512', '1k', '4k'])).toEqual({ offset: 131072, lengths: [512, 1024, 4096] });
  });
});
