import { describe, expect, it } from 'vitest';
import { clusterPieces, groupPieces, type PieceRoute } from './write-pieces.js';

const KiB = 1024;

describe('clusterPieces', () => {
  it('splits a write with a partial head and tail into the clusters it touches', () => {
    expect(clusterPieces(60 * KiB, 72 * KiB, 64 * KiB)).toEqual([
      { cluster: 0, at: 60 * KiB, start: 0, end: 4 * KiB },
      { cluster: 1, at: 0, start: 4 * KiB, end: 68 * KiB },
      { cluster: 2, at: 0, start: 68 * KiB, end: 72 * KiB },
    ]);
  });
});

describe('groupPieces', () => {
  const pieces = clusterPieces(32 * KiB, 6 * 64 * KiB, 64 * KiB); // half, five whole, half
  const inPlace = (host: number): PieceRoute => ({ kind: 'in-place', host });

  it('joins in-place pieces while their host bytes follow each other, partial head and tail included', () => {
    const base = 1 << 20;
    const routes = [inPlace(base + 32 * KiB), inPlace(base + 64 * KiB), inPlace(base + 128 * KiB), inPlace(9 << 20), inPlace(base + 256 * KiB), inPlace(base + 320 * KiB), inPlace(base + 384 * KiB)];
    const groups = groupPieces(pieces, routes);
    expect(groups.map((g) => [g.kind, g.pieces.map((p) => p.cluster), g.host])).toEqual([
      ['in-place', [0, 1, 2], base + 32 * KiB],
      ['in-place', [3], 9 << 20],
      ['in-place', [4, 5, 6], base + 256 * KiB],
    ]);
  });

  it('joins whole clusters needing new hosts into one run; partial ones stay alone', () => {
    const routes: PieceRoute[] = [{ kind: 'partial' }, { kind: 'whole' }, { kind: 'whole' }, inPlace(5 << 20), { kind: 'whole' }, { kind: 'whole' }, { kind: 'partial' }];
    const groups = groupPieces(pieces, routes);
    expect(groups.map((g) => [g.kind, g.pieces.map((p) => p.cluster)])).toEqual([
      ['partial', [0]],
      ['whole', [1, 2]],
      ['in-place', [3]],
      ['whole', [4, 5]],
      ['partial', [6]],
    ]);
  });
});
