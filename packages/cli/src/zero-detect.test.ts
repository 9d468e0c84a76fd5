import { describe, expect, it } from 'vitest';
import { dataRuns, SPARSE_BLOCK } from './zero-detect.js';

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
