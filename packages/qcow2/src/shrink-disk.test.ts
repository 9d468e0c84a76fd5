import { describe, expect, it } from 'vitest';
import type { RefcountStore } from '@q/refcount';
import type { MemoryBlockFile } from '@q/raw';
import { Qcow2Image } from './qcow2-image.js';
import { imageInMemory, refcountsInMemory } from './test-memory-file.js';

async function refcountsOf(file: MemoryBlockFile): Promise<{ store: RefcountStore; clusters: number; clusterSize: number }> {
  const { store, metadata } = await refcountsInMemory(file);
  const { clusterSize } = metadata.geometry;
  return { store, clusters: Math.ceil((await file.size()) / clusterSize), clusterSize };
}

describe('shrinkDisk', () => {
  it('512-byte clusters, 64-bit refcounts: frees L2 entries, whole L2 tables and refcount blocks; the file ends at the last cluster in use', async () => {
    const { file, open } = await imageInMemory(1 << 20, { clusterBits: 9, refcountOrder: 6 });
    let image = await open();
    await image.write(new Uint8Array(1 << 20).fill(0x5a), 0);
    await image.close();
    const grown = await file.size();

    image = await open();
    await image.resize(100 * 1024 + 512);
    await image.close();
    expect(await file.size()).toBeLessThan(grown / 4);

    // Every cluster in the file is still counted exactly once (data, tables, header): nothing leaked or lost.
    const { store, clusters, clusterSize } = await refcountsOf(file);
    expect(await store.highestInUse(clusters)).toBe(clusters - 1);
    expect(await store.countInUse(clusters)).toBeLessThanOrEqual(clusters);

    image = await open();
    expect(image.size).toBe(100 * 1024 + 512);
    const kept = new Uint8Array(100 * 1024 + 512);
    await image.read(kept, 0);
    expect(kept.every((b) => b === 0x5a)).toBe(true);
    // Growing again shows zeros where the dropped data was.
    await image.resize(1 << 20);
    const regrown = new Uint8Array(clusterSize * 4);
    await image.read(regrown, 512 * 1024);
    expect(regrown.every((b) => b === 0)).toBe(true);
    await image.close();
  });

  it('keeps clusters an internal snapshot still reaches', async () => {
    const { file, open } = await imageInMemory(4 << 20);
    let image = await open();
    await image.write(new Uint8Array(4 << 20).fill(0x33), 0);
    await image.createSnapshot('s1');
    await image.resize(1 << 20);
    await image.close();
    image = await Qcow2Image.open(file, { snapshot: 's1' });
    const old = new Uint8Array(4 << 20);
    await image.read(old, 0);
    expect(old.every((b) => b === 0x33)).toBe(true);
    await image.close();
  });
});
