import { describe, expect, it } from 'vitest';
import type { MemoryBlockFile } from '@q/raw';
import { rewriteRefcountWidth } from './refcount-width.js';
import { imageInMemory, refcountsInMemory } from './test-memory-file.js';

async function counts(file: MemoryBlockFile): Promise<{ order: number; byCluster: number[]; structures: Set<number> }> {
  const { store, metadata } = await refcountsInMemory(file);
  const { header, geometry } = metadata;
  const structures = new Set<number>();
  for (let i = 0; i < header.refcountTableClusters; i++) structures.add(header.refcountTableOffset / geometry.clusterSize + i);
  for (const offset of store.blockOffsets) if (offset !== 0) structures.add(offset / geometry.clusterSize);
  const byCluster: number[] = [];
  for (let cluster = 0; cluster < Math.ceil((await file.size()) / geometry.clusterSize); cluster++) byCluster.push(await store.get(cluster));
  return { order: header.refcountOrder, byCluster, structures };
}

describe('rewriteRefcountWidth', () => {
  for (const order of [0, 3, 6]) {
    it(`16 -> ${2 ** order} bits: every count but the old structures' carries over, the new structures count themselves`, async () => {
      const { file, open } = await imageInMemory(1 << 20, { clusterBits: 9 });
      const image = await open();
      await image.write(new Uint8Array(300 * 1024).fill(7), 64 * 1024);
      await image.close();
      const before = await counts(file);
      await rewriteRefcountWidth(file, order);
      const after = await counts(file);
      expect(after.order).toBe(order);
      before.byCluster.forEach((count, cluster) => {
        expect(after.byCluster[cluster], `cluster ${cluster}`).toBe(before.structures.has(cluster) ? 0 : count);
      });
      for (const cluster of after.structures) expect(after.byCluster[cluster]).toBe(1);
      for (let cluster = before.byCluster.length; cluster < after.byCluster.length; cluster++) expect(after.structures.has(cluster)).toBe(true);
    });
  }

  it('refuses a width too small for a refcount, writing nothing', async () => {
    const { file, open } = await imageInMemory(1 << 20);
    const image = await open();
    await image.write(new Uint8Array(4096).fill(1), 0);
    await image.createSnapshot('s');
    await image.close();
    const bytes = file.contents().slice();
    await expect(rewriteRefcountWidth(file, 0)).rejects.toThrow(/Cannot decrease refcount entry width to 1 bits: Cluster at offset 0x[0-9a-f]+ has a refcount of 2/);
    expect(file.contents()).toEqual(bytes);
  });
});
