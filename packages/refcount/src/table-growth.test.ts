import { describe, expect, it } from 'vitest';
import { planTableGrowth } from './table-growth.js';

describe('planTableGrowth', () => {
  it('covers the new area with blocks it places in the area itself', () => {
    // 512-byte clusters, 1-bit refcounts: a block covers 4096 clusters, a table cluster holds 64 entries.
    const plan = planTableGrowth({
      areaStart: 64 * 4096,
      neededRange: 64,
      clusterSize: 512,
      blockEntries: 4096,
      oldTableClusters: 1,
      hasBlock: (range) => range < 64,
    });
    expect(plan.blocks).toEqual([{ range: 64, cluster: 64 * 4096 }]);
    expect(plan.tableCluster).toBe(64 * 4096 + 1);
    expect(plan.tableClusters).toBe(2);
    expect(plan.areaEnd).toBe(64 * 4096 + 3);
  });

  it('adds a block when the area spills into the next range', () => {
    const plan = planTableGrowth({
      areaStart: 2 * 16 - 2,
      neededRange: 1,
      clusterSize: 512,
      blockEntries: 16,
      oldTableClusters: 1,
      hasBlock: (range) => range < 1,
    });
    const covered = new Set(plan.blocks.map((b) => b.range));
    for (let cluster = 30; cluster < plan.areaEnd; cluster++) {
      expect(covered.has(Math.floor(cluster / 16)) || Math.floor(cluster / 16) < 1).toBe(true);
    }
    expect(plan.tableClusters * 64).toBeGreaterThan(Math.max(...covered));
  });

  it('keeps ranges that already have blocks', () => {
    const plan = planTableGrowth({
      areaStart: 100,
      neededRange: 70,
      clusterSize: 512,
      blockEntries: 4096,
      oldTableClusters: 1,
      hasBlock: (range) => range === 0,
    });
    expect(plan.blocks).toEqual([{ range: 70, cluster: 100 }]);
    expect(plan.tableCluster).toBe(101);
  });
});
