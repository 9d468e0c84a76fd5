import { describe, expect, it } from 'vitest';
import { dataRuns, isAllZero, SPARSE_BLOCK } from './zero-detect.js';

describe('dataRuns', () => {
  it('skips all-zero blocks and merges neighbouring data blocks', () => {
    const bytes = new Uint8Array(6 * SPARSE_BLOCK);
    bytes[SPARSE_BLOCK + 5] = 1;
    bytes[2 * SPARSE_BLOCK + SPARSE_BLOCK - 1] = 2;
    bytes[5 * SPARSE_BLOCK] = 3;
    expect(dataRuns(bytes)).toEqual([
      [SPARSE_BLOCK, 3 * SPARSE_BLOCK],
      [5 * SPARSE_BLOCK, 6 * SPARSE_BLOCK],
    ]);
  });

  it('handles a short last block and unaligned views', () => {
    const backing = new Uint8Array(SPARSE_BLOCK + 100);
    backing[SPARSE_BLOCK + 99] = 9;
    const view = backing.subarray(1);
    expect(dataRuns(view)).toEqual([[SPARSE_BLOCK, SPARSE_BLOCK + 99]]);
    expect(dataRuns(new Uint8Array(10))).toEqual([]);
  });
});

describe('isAllZero', () => {
  it('finds a single non-zero byte anywhere, in aligned and unaligned views of any length', () => {
    const backing = new Uint8Array(4096 + 16);
    for (const start of [0, 1, 2, 3, 5]) {
      for (const length of [0, 1, 3, 4, 7, 64, 4099]) {
        const view = backing.subarray(start, start + length);
        expect(isAllZero(view)).toBe(true);
        for (const at of [0, length >> 1, length - 1]) {
          if (length === 0) continue;
          view[at] = 0x80;
          expect(isAllZero(view), `start ${start} length ${length} at ${at}`).toBe(false);
          view[at] = 0;
        }
      }
    }
  });
});
