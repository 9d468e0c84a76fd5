import { describe, expect, it } from 'vitest';
import { ExitError, UsageError } from '../usage-error.js';
import { parseServeOptions, parseShared } from './serve-options.js';

describe('parseServeOptions', () => {
  it("has qemu-nbd's defaults: one client, not persistent, writeback, discard ignored, no zero detection", () => {
    expect(parseServeOptions(['disk.qcow2'])).toMatchObject({
      file: 'disk.qcow2',
      path: 'disk.qcow2',
      shared: 1,
      persistent: false,
      cache: 'writeback',
      discard: 'ignore',
      detectZeroes: 'off',
      fork: false,
      pidFile: undefined,
      readOnly: false,
      address: { host: '127.0.0.1', port: 10809 },
    });
  });

  it('reads every flag, long and short', () => {
    const options = parseServeOptions([
      '-e', '3', '-t', '--fork', '--pid-file=p', '--cache=unsafe', '--discard=unmap', '--detect-zeroes=unmap',
      '-l', 'snapshot.name=s', '-k', 'x.sock', '-x', 'name', '-D', 'text', 'disk.qcow2',
    ]);
    expect(options).toMatchObject({
      shared: 3,
      persistent: true,
      fork: true,
      pidFile: 'p',
      cache: 'unsafe',
      discard: 'unmap',
      detectZeroes: 'unmap',
      snapshot: { name: 's' },
      readOnly: true,
      address: { path: 'x.sock' },
      exportName: 'name',
      description: 'text',
    });
    expect(parseServeOptions(['--shared=0', '--persistent', '--nocache', '--load-snapshot', '2', 'd']).cache).toBe('none');
    expect(parseServeOptions(['-n', 'd']).cache).toBe('none');
    expect(parseServeOptions(['--discard=on', 'd']).discard).toBe('unmap');
    expect(parseServeOptions(['--discard=off', 'd']).discard).toBe('ignore');
    expect(parseServeOptions(['-s', 'd'])).toMatchObject({ cow: true, readOnly: false });
  });

  it('reads -A and every -B, in the order given', () => {
    expect(parseServeOptions(['d'])).toMatchObject({ allocationDepth: false, bitmaps: [] });
    expect(parseServeOptions(['-A', '-B', 'b1', '--bitmap=b2', '--bitmap', 'b1', 'd'])).toMatchObject({ allocationDepth: true, bitmaps: ['b1', 'b2', 'b1'] });
    expect(parseServeOptions(['--allocation-depth', 'd']).allocationDepth).toBe(true);
  });

  it('checks --detect-zeroes=unmap against the --discard before it, and lets a later detect-zeroes win', () => {
    expect(() => parseServeOptions(['--detect-zeroes=unmap', '--discard=unmap', 'd'])).toThrow(ExitError);
    expect(parseServeOptions(['--discard=unmap', '--detect-zeroes=unmap', '--detect-zeroes=on', 'd']).detectZeroes).toBe('on');
  });

  it('refuses -l with -s (qemu-nbd cannot find the snapshot in its overlay) and keeps usage errors as they were', () => {
    expect(() => parseServeOptions(['-l', 'x', '-s', 'd'])).toThrow(ExitError);
    expect(() => parseServeOptions([])).toThrow(UsageError);
    expect(() => parseServeOptions(['-k', 's', '-p', '1', 'd'])).toThrow(UsageError);
  });
});

describe('parseShared (strtol with base 0, as qemu-nbd)', () => {
  it.each([
    ['0', 0],
    ['-0', 0],
    ['+2', 2],
    [' 3', 3],
    ['0x10', 16],
    ['010', 8],
    ['2147483647', 2147483647],
  ])('%j is %i', (text, value) => {
    expect(parseShared(text)).toBe(value);
  });

  it.each(['', 'abc', '1x', '2 ', '08', '0x', '-1', '2147483648', '99999999999', '1.5'])('%j is refused', (text) => {
    expect(() => parseShared(text)).toThrow(`Invalid shared device number '${text}'`);
  });
});
