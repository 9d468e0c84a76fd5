import { describe, expect, it } from 'vitest';
import { planRefcountStructures } from './table-growth.js';

describe('planRefcountStructures', () => {
  it('places a missing block in the area, where it counts itself', () => {
    const plan = planRefcountStructures({
      areaStart: 5000,
      neededRanges: [3],
      clusterSize: 512,
      blockEntries: 4096,
      tableClusters: 1,
      hasBlock: (range) => range === 0,
    });
    // The area itself (cluster 5000) lies in range 1, which needs a block too.
    expect(plan.blocks).toEqual([
      { range: 1, cluster: 5000 },
      { range: 3, cluster: 5001 },
    ]);
    expect(plan.table).toBeUndefined();
    expect(plan.areaEnd).toBe(5002);
  });

  it('grows the table when a range is past its end, and counts the new table', () => {
    // 512-byte clusters, 1-bit refcounts: a block covers 4096 clusters, a table cluster holds 64 entries.
    const plan = planRefcountStructures({
      areaStart: 64 * 4096,
      neededRanges: [64],
      clusterSize: 512,
      blockEntries: 4096,
      tableClusters: 1,
      hasBlock: (range) => range < 64,
    });
    expect(plan.blocks).toEqual([{ range: 64, cluster: 64 * 4096 }]);
    expect(plan.table).toEqual({ cluster: 64 * 4096 + 1, clusters: 2 });
    expect(plan.areaEnd).toBe(64 * 4096 + 3);
  });

  it('adds blocks when the area spills into further ranges', () => {
    const plan = planRefcountStructures({
      areaStart: 30,
      neededRanges: [1],
      clusterSize: 512,
      blockEntries: 16,
      tableClusters: 1,
      hasBlock: (range) => range < 1,
    });
    const covered = new Set(plan.blocks.map((b) => b.range));
    for (let cluster = 30; cluster < plan.areaEnd; cluster++) {
      const range = Math.floor(cluster / 16);
      expect(range < 1 || covered.has(range)).toBe(true);
    }
  });
});
