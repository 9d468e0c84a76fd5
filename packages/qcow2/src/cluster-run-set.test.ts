import { describe, expect, it } from 'vitest';
import { ClusterRunSet } from './cluster-run-set.js';

describe('ClusterRunSet', () => {
  it('hands clusters back as ascending runs of neighbours, across words and pages', () => {
    const set = new ClusterRunSet();
    for (const cluster of [40, 7, 8, 9, 31, 32, 33, 32767, 32768, 32769, 5, 100_000]) set.add(cluster);
    set.add(8);
    expect(set.size).toBe(12);
    expect(set.runs()).toEqual([
      [5, 1],
      [7, 3],
      [31, 3],
      [40, 1],
      [32767, 3],
      [100_000, 1],
    ]);
  });

  it('forgets deleted clusters, splitting runs, and drops empty pages', () => {
    const set = new ClusterRunSet();
    for (let c = 100; c < 200; c++) set.add(c);
    set.delete(150);
    set.delete(150);
    set.delete(99_999);
    expect(set.has(150)).toBe(false);
    expect(set.has(151)).toBe(true);
    expect(set.runs()).toEqual([
      [100, 50],
      [151, 49],
    ]);
    for (let c = 100; c < 200; c++) set.delete(c);
    expect(set.size).toBe(0);
    expect(set.runs()).toEqual([]);
  });

  it('takes cluster indexes past 2^32 (512-byte clusters of a file beyond 2 TiB)', () => {
    const set = new ClusterRunSet();
    const big = 2 ** 33 + 5;
    set.add(big);
    set.add(big + 1);
    set.add(2 ** 32 - 1);
    expect(set.runs()).toEqual([
      [2 ** 32 - 1, 1],
      [big, 2],
    ]);
    set.clear();
    expect(set.size).toBe(0);
  });

  it('matches a plain Set on random adds and deletes', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const set = new ClusterRunSet();
    const plain = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const cluster = random(100_000);
      if (random(3) === 0) {
        set.delete(cluster);
        plain.delete(cluster);
      } else {
        set.add(cluster);
        plain.add(cluster);
      }
    }
    expect(set.size).toBe(plain.size);
    const expanded = set.runs().flatMap(([first, count]) => Array.from({ length: count }, (_, i) => first + i));
    expect(expanded).toEqual([...plain].sort((a, b) => a - b));
  });
});
