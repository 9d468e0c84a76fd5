import { describe, expect, it } from 'vitest';
import { decodeRefcountTable, getRefcount, setRefcount, view, writeU64 } from '@q/format';
import { MemoryBlockFile } from '@q/raw';
import { RefcountStore } from './refcount-store.js';

/**
 * A file laid out as QEMU creates images: header cluster 0, refcount table in cluster 1, the first refcount block
 * in cluster 2, which counts clusters 0-2.
 */
function freshFile(clusterBits: number, refcountOrder: number): MemoryBlockFile {
  const clusterSize = 2 ** clusterBits;
  const bytes = new Uint8Array(3 * clusterSize);
  writeU64(view(bytes), clusterSize, 2 * clusterSize);
  const block = bytes.subarray(2 * clusterSize);
  for (let cluster = 0; cluster < 3; cluster++) setRefcount(block, cluster, refcountOrder, 1);
  return new MemoryBlockFile(bytes);
}

async function openStore(file: MemoryBlockFile, clusterBits: number, refcountOrder: number) {
  const switches: Array<[number, number]> = [];
  const events: string[] = [];
  const store = await RefcountStore.open({
    file,
    clusterBits,
    refcountOrder,
    tableOffset: 2 ** clusterBits,
    tableClusters: 1,
    switchTable: async (offset, clusters) => void switches.push([offset, clusters]),
    listener: { freed: (cluster) => events.push(`-${cluster}`), claimed: (cluster) => events.push(`+${cluster}`) },
  });
  return { store, switches, events };
}

/** Every refcount as stored on disk, read back from the bytes (not through the store's cache). */
function storedRefcounts(file: MemoryBlockFile, clusterBits: number, refcountOrder: number, tableOffset: number, tableClusters: number, clusters: number): number[] {
  const bytes = file.contents();
  const clusterSize = 2 ** clusterBits;
  const entries = (clusterSize * 8) / 2 ** refcountOrder;
  const table = decodeRefcountTable(bytes.subarray(tableOffset, tableOffset + tableClusters * clusterSize), clusterSize);
  const counts: number[] = [];
  for (let cluster = 0; cluster < clusters; cluster++) {
    const block = table[Math.floor(cluster / entries)] ?? 0;
    counts.push(block === 0 ? 0 : getRefcount(bytes.subarray(block, block + clusterSize), cluster % entries, refcountOrder));
  }
  return counts;
}

describe('RefcountStore', () => {
  it('allocates after the metadata QEMU lays out, and reuses freed clusters first', async () => {
    const file = freshFile(16, 4);
    const { store } = await openStore(file, 16, 4);
    expect(await store.allocate(1)).toBe(3 * 65536);
    expect(await store.allocate(2)).toBe(4 * 65536);
    await store.adjust(4, -1);
    expect(await store.allocate(1)).toBe(4 * 65536);
    expect(await store.allocate(2)).toBe(6 * 65536);
    await store.flush();
    expect(storedRefcounts(file, 16, 4, 65536, 1, 9)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
  });

  it('keeps free clusters a longer run skipped findable for later allocations', async () => {
    const file = freshFile(16, 4);
    const { store } = await openStore(file, 16, 4);
    await store.allocate(4); // clusters 3-6
    await store.adjust(4, -1); // a one-cluster hole at 4
    expect(await store.allocate(2)).toBe(7 * 65536);
    expect(await store.allocate(1)).toBe(4 * 65536);
  });

  it('allocates a run from the first free cluster: a hole first, then the rest in one piece', async () => {
    const file = freshFile(16, 4);
    const { store, events } = await openStore(file, 16, 4);
    await store.allocate(5); // clusters 3-7
    await store.adjust(4, -1);
    await store.adjust(5, -1); // a two-cluster hole at 4-5
    events.length = 0;
    expect(await store.allocateRun(8)).toEqual({ offset: 4 * 65536, count: 2 });
    expect(await store.allocateRun(6)).toEqual({ offset: 8 * 65536, count: 6 });
    expect(await store.allocateRun(1)).toEqual({ offset: 14 * 65536, count: 1 });
    expect(events).toEqual(['+4', '+5', '+8', '+9', '+10', '+11', '+12', '+13', '+14']);
    await store.flush();
    expect(storedRefcounts(file, 16, 4, 65536, 1, 16)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  });

  it('puts the block of a range without one first and stops a run where such a range begins', async () => {
    // 512-byte clusters, 64-bit refcounts: one block covers 64 clusters; the first block (cluster 2) counts 0-63.
    const file = freshFile(9, 6);
    const { store } = await openStore(file, 9, 6);
    expect(await store.allocateRun(150)).toEqual({ offset: 3 * 512, count: 61 });
    // Range 1 (clusters 64-127) has no block: it goes at cluster 64, counting itself; the run follows it.
    expect(await store.allocateRun(89)).toEqual({ offset: 65 * 512, count: 63 });
    expect(store.blockOffsets[1]).toBe(64 * 512);
    await store.flush();
    const counts = storedRefcounts(file, 9, 6, store.location.offset, store.location.clusters, 130);
    for (let c = 0; c < 128; c++) expect(counts[c], `cluster ${c}`).toBe(1);
    expect(counts[128]).toBe(0);
  });

  it('refuses to go below zero or above the width', async () => {
    const { store } = await openStore(freshFile(9, 0), 9, 0);
    await expect(store.adjust(5, -1)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(store.adjust(0, 1)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });

  it('adjusts a list of clusters in order, across blocks cached and not, stopping at the first bad count', async () => {
    // 512-byte clusters with 64-bit refcounts: a block covers 64 clusters, so the run spans several blocks.
    const file = freshFile(9, 6);
    const { store } = await openStore(file, 9, 6);
    await store.allocate(200); // clusters 3-202
    await store.flush();
    const reopened = await openStore(file, 9, 6); // nothing cached: each block is loaded on the way
    await reopened.store.adjustEach([120], 1);
    await reopened.store.adjustEach([10, 150, 120, 199], -1);
    expect(await Promise.all([10, 120, 150, 199].map((c) => reopened.store.get(c)))).toEqual([0, 1, 0, 0]);
    // Cluster 11 is adjusted, then 10 would go below zero: 12 is never reached.
    await expect(reopened.store.adjustEach([11, 10, 12], -1)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect([await reopened.store.get(11), await reopened.store.get(12)]).toEqual([0, 1]);
    expect(reopened.events).toEqual(['-10', '-150', '-199', '-11']);
    // The change made before the failure is kept in the block and written back with it.
    await reopened.store.flush();
    const again = await openStore(file, 9, 6);
    expect([await again.store.get(11), await again.store.get(12), await again.store.get(120)]).toEqual([0, 1, 1]);
  });

  it('creates blocks that count themselves and grows the table crash-safely', async () => {
    // 512-byte clusters with 64-bit refcounts: a block covers 64 clusters, the one-cluster table 64 blocks.
    const file = freshFile(9, 6);
    const { store, switches } = await openStore(file, 9, 6);
    const first = await store.allocate(5000);
    expect(first).toBe(3 * 512);
    await store.allocate(10);
    await store.flush();
    expect(switches).toHaveLength(1);
    const [tableOffset, tableClusters] = switches[0]!;
    expect(store.location).toEqual({ offset: tableOffset, clusters: tableClusters });
    const counts = storedRefcounts(file, 9, 6, tableOffset, tableClusters, 8000);
    // Data runs, blocks and the new table are all at 1; the old table (cluster 1) was released.
    expect(counts[1]).toBe(0);
    const metadata = new Set([0, 2, tableOffset / 512]);
    for (let c = 0; c < tableClusters; c++) metadata.add(tableOffset / 512 + c);
    for (const block of store.blockOffsets) if (block !== 0) metadata.add(block / 512);
    for (const cluster of metadata) expect(counts[cluster], `metadata cluster ${cluster}`).toBe(1);
    for (let c = 3; c < 3 + 5000; c++) expect(counts[c]).toBe(1);
    // Nothing else is counted: every counted cluster is metadata or data.
    const counted = counts.filter((n) => n === 1).length;
    expect(counted).toBe(metadata.size + 5000 + 10);
  });

  it('tells its listener when a cluster becomes free and when one is taken again, in order', async () => {
    const { store, events } = await openStore(freshFile(16, 4), 16, 4);
    await store.allocate(2); // clusters 3, 4
    await store.adjust(3, 1); // 1 -> 2: no transition
    await store.adjust(3, -1);
    await store.adjust(4, -1);
    await store.adjust(3, -1);
    await store.set(9, 0); // already free: nothing
    expect(await store.allocate(1)).toBe(3 * 65536);
    expect(events).toEqual(['+3', '+4', '-4', '-3', '+3']);
  });

  it('tells its listener about clusters taken by new refcount structures and the table they replace', async () => {
    const { store, events, switches } = await openStore(freshFile(9, 6), 9, 6);
    await store.allocate(5000);
    expect(switches).toHaveLength(1);
    const claimed = new Set(events.filter((e) => e.startsWith('+')).map((e) => Number(e.slice(1))));
    // Every block and the new table were claimed; the old table (cluster 1) was freed.
    for (const block of store.blockOffsets) if (block !== 0 && block / 512 > 2) expect(claimed.has(block / 512), `block at ${block}`).toBe(true);
    expect(claimed.has(switches[0]![0] / 512)).toBe(true);
    expect(events.filter((e) => e.startsWith('-'))).toEqual(['-1']);
    expect(claimed.size).toBe(events.length - 1);
  });

  it('finds the highest cluster in use, skipping ranges without a block', async () => {
    const { store } = await openStore(freshFile(9, 6), 9, 6);
    expect(await store.highestInUse(1_000_000)).toBe(2);
    await store.allocate(200);
    expect(await store.highestInUse(1_000_000)).toBeGreaterThanOrEqual(202);
    const top = await store.highestInUse(1_000_000);
    await store.adjust(top, -1);
    expect(await store.highestInUse(1_000_000)).toBe(top - 1);
    expect(await store.highestInUse(100)).toBe(99);
    expect(await store.highestInUse(0)).toBe(-1);
  });

  it('counts clusters in use, stopping at what is enough', async () => {
    const { store } = await openStore(freshFile(9, 6), 9, 6);
    expect(await store.countInUse(1_000_000)).toBe(3);
    await store.allocate(200);
    const all = await store.countInUse(1_000_000);
    expect(all).toBeGreaterThanOrEqual(203);
    await store.adjust(100, -1);
    expect(await store.countInUse(1_000_000)).toBe(all - 1);
    expect(await store.countInUse(1_000_000, 50)).toBe(50);
    expect(await store.countInUse(10)).toBe(10);
  });
});
