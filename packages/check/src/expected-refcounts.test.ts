import { describe, expect, it } from 'vitest';
import { getRefcount } from '@q/format';
import { ExpectedRefcounts } from './expected-refcounts.js';

describe('ExpectedRefcounts', () => {
  it('counts per cluster and grows its size to the highest cluster counted, as QEMU grows its array', () => {
    const counts = new ExpectedRefcounts(10, 4);
    expect(counts.size).toBe(10);
    expect(counts.increment(3)).toBe(true);
    expect(counts.increment(3)).toBe(true);
    expect(counts.get(3)).toBe(2);
    expect(counts.get(4)).toBe(0);
    counts.increment(12);
    expect(counts.size).toBe(13);
  });

  it('saturates at the refcount width: 1-bit counts overflow at the second reference', () => {
    const counts = new ExpectedRefcounts(4, 0);
    expect(counts.increment(1)).toBe(true);
    expect(counts.increment(1)).toBe(false);
    expect(counts.get(1)).toBe(1);
  });

  it('uses memory only where clusters are referenced (a huge sparse range costs nothing)', () => {
    const counts = new ExpectedRefcounts(2 ** 31, 4);
    counts.increment(5);
    counts.increment(2 ** 30);
    expect([...counts.populatedRuns(0, counts.size)].length).toBe(2);
    expect(counts.findFree(0, 3)).toBe(0);
    expect(counts.findFree(5, 1)).toBe(6);
  });

  it('refuses to spread over unbounded memory for references past the end of the file', () => {
    const counts = new ExpectedRefcounts(16, 4);
    expect(() => {
      for (let i = 0; i < 10_000; i++) counts.increment(16 + i * 4096);
    }).toThrow(/past the end of the file/);
  });

  it('finds first-fit free runs, extending past the current size when needed', () => {
    const counts = new ExpectedRefcounts(8, 4);
    for (const cluster of [0, 1, 2, 4, 6, 7]) counts.set(cluster, 1);
    expect(counts.findFree(0, 1)).toBe(3);
    expect(counts.findFree(0, 2)).toBe(8);
    expect(counts.findFree(4, 1)).toBe(5);
  });

  it.each([0, 1, 2, 3, 4, 5, 6])('encodes a refcount block of %i-order entries', (order) => {
    const counts = new ExpectedRefcounts(64, order);
    const max = Math.min(2 ** 2 ** order - 1, 7);
    for (let cluster = 0; cluster < 64; cluster++) {
      for (let i = 0; i < cluster % (max + 1); i++) counts.increment(cluster);
    }
    const entries = (512 * 8) / 2 ** order;
    const block = counts.encodeBlock(0, entries, 512);
    for (let cluster = 0; cluster < 64; cluster++) expect(getRefcount(block, cluster, order)).toBe(cluster % (max + 1));
  });
});
