import { chainStatus } from '@q/backing';
import type { BlockDevice, BlockStatus } from '@q/raw';
import { describe, expect, it } from 'vitest';
import { NonZeroRanges } from './non-zero-ranges.js';

const MiB = 1024 * 1024;

/**
 * A device of `size` bytes whose block status says data at `data` ([start, end) pairs, in order), a zero cluster at
 * `zeros`, unallocated elsewhere (no backing file: zeros); counts the status calls.
 */
function device(size: number, data: Array<[number, number]>, zeros: Array<[number, number]>, calls: { count: number }): BlockDevice {
  const known = [...data.map(([s, e]) => ({ s, e, kind: 'data' as const })), ...zeros.map(([s, e]) => ({ s, e, kind: 'zero' as const }))].sort((a, b) => a.s - b.s);
  const blockStatus = async (offset: number, length: number): Promise<BlockStatus[]> => {
    calls.count++;
    const end = offset + length;
    const out: BlockStatus[] = [];
    let at = offset;
    for (const { s, e, kind } of known) {
      if (e <= at || s >= end) continue;
      if (s > at) out.push({ offset: at, length: s - at, kind: 'unallocated' });
      const to = Math.min(e, end);
      out.push(kind === 'data' ? { offset: Math.max(s, at), length: to - Math.max(s, at), kind, hostOffset: Math.max(s, at), hostFile: 'f' } : { offset: Math.max(s, at), length: to - Math.max(s, at), kind });
      at = to;
    }
    if (at < end) out.push({ offset: at, length: end - at, kind: 'unallocated' });
    return out;
  };
  const refuse = (): Promise<never> => Promise.reject(new Error('not used'));
  return { name: 'f', format: 'qcow2', size, readOnly: true, backing: undefined, blockStatus, read: refuse, write: refuse, writeZeroes: refuse, discard: refuse, flush: refuse, close: async () => undefined };
}

const DATA: Array<[number, number]> = [
  [1 * MiB, 3 * MiB],
  [3 * MiB, 4 * MiB], // joins the one before
  [63 * MiB, 66 * MiB], // across the first window's end
  [150 * MiB, 150 * MiB + 4096],
];
const ZEROS: Array<[number, number]> = [[10 * MiB, 12 * MiB]];

describe('NonZeroRanges', () => {
  it('answers chunks from windows looked up once, clipped and joined', async () => {
    const calls = { count: 0 };
    const ranges = new NonZeroRanges(device(200 * MiB, DATA, ZEROS, calls));
    expect(await ranges.within(0, MiB)).toEqual([]);
    expect(await ranges.within(0, 8 * MiB)).toEqual([[1 * MiB, 4 * MiB]]);
    expect(await ranges.within(2 * MiB, 3 * MiB)).toEqual([[2 * MiB, 3 * MiB]]);
    expect(await ranges.within(10 * MiB, 12 * MiB)).toEqual([]);
    expect(calls.count).toBe(1);
    expect(await ranges.within(62 * MiB, 65 * MiB)).toEqual([[63 * MiB, 65 * MiB]]);
    expect(await ranges.within(65 * MiB, 70 * MiB)).toEqual([[65 * MiB, 66 * MiB]]);
    expect(calls.count).toBe(2);
    expect(await ranges.within(150 * MiB, 151 * MiB)).toEqual([[150 * MiB, 150 * MiB + 4096]]);
    expect(await ranges.within(199 * MiB, 200 * MiB)).toEqual([]);
  });

  it('finds where the next data starts, jumping over long empty space in few lookups', async () => {
    const TiB = 2 ** 40;
    const far: Array<[number, number]> = [...DATA, [TiB, TiB + MiB], [2 * TiB - 4096, 2 * TiB]];
    const calls = { count: 0 };
    const ranges = new NonZeroRanges(device(2 * TiB, far, ZEROS, calls));
    expect(await ranges.nextNonZero(0, 8 * MiB)).toBe(1 * MiB);
    expect(await ranges.nextNonZero(2 * MiB, 8 * MiB)).toBe(2 * MiB);
    expect(await ranges.nextNonZero(4 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(await ranges.nextNonZero(4 * MiB, 100 * MiB)).toBe(63 * MiB);
    expect(await ranges.nextNonZero(66 * MiB, 2 * TiB)).toBe(150 * MiB);
    calls.count = 0;
    expect(await ranges.nextNonZero(151 * MiB, 2 * TiB)).toBe(TiB);
    // Two windows, then jumps that double up to 16 GiB: about 70 lookups for 1 TiB, not 16 thousand windows.
    expect(calls.count).toBeLessThan(100);
    expect(await ranges.nextNonZero(TiB + MiB, 2 * TiB)).toBe(2 * TiB - 4096);
    expect(await ranges.nextNonZero(TiB + MiB, 2 * TiB - 4096)).toBe(2 * TiB - 4096);
    // Windows it jumped over are not kept; the ones it looked up are answered from memory.
    expect(await ranges.within(2 * TiB - MiB, 2 * TiB)).toEqual([[2 * TiB - 4096, 2 * TiB]]);
  });

  it('gives what the chain status of each chunk gives, asked in any order', async () => {
    const dev = device(200 * MiB, DATA, ZEROS, { count: 0 });
    const ranges = new NonZeroRanges(dev);
    const chunks = Array.from({ length: 200 }, (_, i) => i).sort((a, b) => ((a * 37) % 200) - ((b * 37) % 200));
    for (const i of chunks) {
      const start = i * MiB;
      const expected = (await chainStatus(dev, start, MiB)).filter((e) => !e.zero).map((e): [number, number] => [e.offset, e.offset + e.length]);
      const joined = expected.reduce<Array<[number, number]>>((out, [s, e]) => {
        const last = out[out.length - 1];
        if (last !== undefined && last[1] === s) last[1] = e;
        else out.push([s, e]);
        return out;
      }, []);
      expect(await ranges.within(start, start + MiB)).toEqual(joined);
    }
  });
});
