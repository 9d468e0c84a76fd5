import { describe, expect, it } from 'vitest';
import { parseContentRange, rangeHeader } from './content-range.js';

describe('parseContentRange', () => {
  it('reads the satisfied and unsatisfied forms', () => {
    expect(parseContentRange('bytes 0-65535/1048576')).toEqual({ first: 0, last: 65535, total: 1048576 });
    expect(parseContentRange('Bytes  10-10/*')).toEqual({ first: 10, last: 10, total: undefined });
    expect(parseContentRange('bytes */4096')).toEqual({ first: undefined, last: undefined, total: 4096 });
    expect(parseContentRange('bytes 5368709120-5368709631/6442450944')).toEqual({ first: 5 * 2 ** 30, last: 5 * 2 ** 30 + 511, total: 6 * 2 ** 30 });
  });

  it('refuses what cannot be a range of the file', () => {
    for (const header of [null, '', 'bytes 10-5/100', 'bytes 0-100/100', 'bytes 0-1', 'items 0-1/2', 'bytes -1-2/3', 'bytes 0-99999999999999999999/1', 'bytes */*']) {
      expect(parseContentRange(header)).toBeUndefined();
    }
  });

  it('writes inclusive Range headers from half-open ranges', () => {
    expect(rangeHeader(0, 65536)).toBe('bytes=0-65535');
    expect(rangeHeader(5 * 2 ** 30, 5 * 2 ** 30 + 1)).toBe('bytes=5368709120-5368709120');
  });
});
