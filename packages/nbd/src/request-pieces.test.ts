import { describe, expect, it } from 'vitest';
import { requestPieces } from './request-pieces.js';

describe('requestPieces', () => {
  it('only splits at the cap when any alignment goes', () => {
    expect(requestPieces(3, 10, 1, 4, 100)).toEqual([
      { offset: 3, length: 4 },
      { offset: 7, length: 4 },
      { offset: 11, length: 2 },
    ]);
  });

  it('cuts an unaligned head and tail into partial blocks around an aligned middle', () => {
    expect(requestPieces(100, 2000, 512, 1024, 1 << 20)).toEqual([
      { offset: 100, length: 412, block: { offset: 0, length: 512 } },
      { offset: 512, length: 1024 },
      { offset: 1536, length: 512 },
      { offset: 2048, length: 52, block: { offset: 2048, length: 512 } },
    ]);
  });

  it('keeps a range inside one block as one partial piece', () => {
    expect(requestPieces(600, 100, 512, 1024, 4096)).toEqual([{ offset: 600, length: 100, block: { offset: 512, length: 512 } }]);
  });

  it('takes the last, short block of an export whole when the range ends there', () => {
    expect(requestPieces(512, 488, 512, 4096, 1000)).toEqual([{ offset: 512, length: 488 }]);
    expect(requestPieces(600, 100, 512, 4096, 1000)).toEqual([{ offset: 600, length: 100, block: { offset: 512, length: 488 } }]);
  });

  it('covers the range exactly, without gaps or overlaps', () => {
    for (const [offset, length] of [[0, 1], [4095, 2], [1, 65536 * 3], [8192, 8192]] as const) {
      let at = offset;
      for (const piece of requestPieces(offset, length, 4096, 16384, 1 << 30)) {
        expect(piece.offset).toBe(at);
        if (piece.block === undefined) expect([piece.offset % 4096, piece.length % 4096, piece.length <= 16384]).toEqual([0, 0, true]);
        at += piece.length;
      }
      expect(at).toBe(offset + length);
    }
  });
});
