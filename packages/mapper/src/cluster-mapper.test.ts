import { describe, expect, it } from 'vitest';
import { TableCache } from '@q/cache';
import type { Geometry } from '@q/format';
import { ClusterMapper, type ClusterMapperOptions } from './cluster-mapper.js';
import { L1Table } from './l1-table.js';
import { MetadataRegions } from './metadata-regions.js';

const CLUSTER = 4096;
const geometry: Geometry = {
  clusterBits: 12,
  clusterSize: CLUSTER,
  extendedL2: false,
  l2EntryBytes: 8,
  l2Entries: 512,
  l2Coverage: 512 * CLUSTER,
  subclusterSize: CLUSTER,
  refcountBits: 16,
  refcountBlockEntries: 2048,
  externalDataFile: false,
};

/** A mapper over hand-built tables: L1 entry 0 -> an L2 table at `l2At`, entries as given (hi, lo). */
function mapperWith(entries: Array<[number, number]>, overrides: Partial<ClusterMapperOptions> = {}, l2At = 0x4000) {
  const l1 = new Uint8Array(16);
  new DataView(l1.buffer).setUint32(4, l2At);
  const table = new Uint8Array(CLUSTER);
  const view = new DataView(table.buffer);
  entries.forEach(([hi, lo], i) => {
    view.setUint32(i * 8, hi);
    view.setUint32(i * 8 + 4, lo);
  });
  const l2Cache = new TableCache({ budgetBytes: 1 << 20, tableBytes: CLUSTER, load: async () => table.slice() });
  const metadata = new MetadataRegions(CLUSTER);
  return new ClusterMapper({ geometry, l1: new L1Table(l1, 0x3000, CLUSTER, 'test.qcow2'), l2Cache, imageFileSize: 0x100000, metadata, name: 'test.qcow2', ...overrides });
}

const COPIED = 0x8000_0000;

describe('ClusterMapper', () => {
  it('merges clusters that are contiguous on the host into one data extent', async () => {
    const mapper = mapperWith([[COPIED, 0x10000], [COPIED, 0x11000], [COPIED, 0x20000], [0, 0], [0, 1]]);
    expect(await mapper.map(100, 5 * CLUSTER - 100)).toEqual([
      { kind: 'data', guestOffset: 100, length: 2 * CLUSTER - 100, hostOffset: 0x10000 + 100 },
      { kind: 'data', guestOffset: 2 * CLUSTER, length: CLUSTER, hostOffset: 0x20000 },
      { kind: 'unallocated', guestOffset: 3 * CLUSTER, length: CLUSTER },
      { kind: 'zero', guestOffset: 4 * CLUSTER, length: CLUSTER, hostOffset: undefined },
    ]);
  });

  it('reports a whole unallocated L1 range as one extent', async () => {
    const mapper = mapperWith([]);
    const far = geometry.l2Coverage;
    expect(await mapper.map(far + 5, 3 * far)).toEqual([{ kind: 'unallocated', guestOffset: far + 5, length: 3 * far }]);
  });

  it('refuses data past the end of the file', async () => {
    const mapper = mapperWith([[COPIED, 0x200000]]);
    await expect(mapper.map(0, CLUSTER)).rejects.toMatchObject({ code: 'E_PAST_EOF', file: 'test.qcow2' });
  });

  it('treats offset 0 as unallocated and refuses compressed data inside the header cluster', async () => {
    expect(await mapperWith([[COPIED, 0]]).map(0, 1)).toEqual([{ kind: 'unallocated', guestOffset: 0, length: 1 }]);
    await expect(mapperWith([[0x4000_0000, 0x100]]).map(0, 1)).rejects.toThrow(/points into the image header/);
  });

  it('refuses an L2 table offset that is not cluster aligned', async () => {
    await expect(mapperWith([], {}, 0x4200).map(0, 1)).rejects.toThrow(/not cluster aligned/);
  });

  it('refuses data overlapping another metadata table', async () => {
    const metadata = new MetadataRegions(CLUSTER);
    metadata.add(0x8000, 0x1000, 'refcount table');
    const mapper = mapperWith([[COPIED, 0x8000]], { metadata });
    await expect(mapper.map(0, 1)).rejects.toThrow(/overlaps the refcount table/);
  });

  it('refuses an L2 table past the end of the file', async () => {
    const mapper = mapperWith([], { imageFileSize: 0x4800 });
    await expect(mapper.map(0, 1)).rejects.toMatchObject({ code: 'E_PAST_EOF' });
  });

  it('maps compressed clusters one cluster at a time', async () => {
    // Compressed, 12-bit clusters: x = 62 - 4 = 58, so the offset takes bits 0-57 and sectors bits 58-61.
    const mapper = mapperWith([[0x4000_0000 | (1 << 26), 0x10100], [0x4000_0000, 0x10500]]);
    const extents = await mapper.map(0, 2 * CLUSTER);
    expect(extents).toEqual([
      { kind: 'compressed', guestOffset: 0, length: CLUSTER, clusterGuestOffset: 0, hostOffset: 0x10100, compressedBytes: 1024 - 256 },
      { kind: 'compressed', guestOffset: CLUSTER, length: CLUSTER, clusterGuestOffset: CLUSTER, hostOffset: 0x10500, compressedBytes: 256 },
    ]);
  });
  describe('runs of entries taken in one step', () => {
    const data = (count: number, host: number, flags = COPIED): Array<[number, number]> =>
      Array.from({ length: count }, (_, i): [number, number] => [flags, host + i * CLUSTER]);

    it('joins contiguous data, zero and unallocated runs and stops where an entry breaks one', async () => {
      const entries: Array<[number, number]> = [...data(4, 0x10000), [COPIED, 0x20000], ...Array.from({ length: 3 }, (): [number, number] => [0, 1]), [0, 0], [0, 0], ...data(2, 0x30000, 0)];
      expect(await mapperWith(entries).map(100, 11 * CLUSTER - 200)).toEqual([
        { kind: 'data', guestOffset: 100, length: 4 * CLUSTER - 100, hostOffset: 0x10064 },
        { kind: 'data', guestOffset: 4 * CLUSTER, length: CLUSTER, hostOffset: 0x20000 },
        { kind: 'zero', guestOffset: 5 * CLUSTER, length: 3 * CLUSTER },
        { kind: 'unallocated', guestOffset: 8 * CLUSTER, length: 2 * CLUSTER },
        { kind: 'data', guestOffset: 10 * CLUSTER, length: CLUSTER - 100, hostOffset: 0x30000 },
      ]);
    });

    it('stops a run at the end of the L2 table', async () => {
      const mapper = mapperWith(data(512, 0x10000), { imageFileSize: 0x10000 + 513 * CLUSTER });
      expect(await mapper.map(0, 513 * CLUSTER)).toEqual([
        { kind: 'data', guestOffset: 0, length: 512 * CLUSTER, hostOffset: 0x10000 },
        { kind: 'unallocated', guestOffset: 512 * CLUSTER, length: CLUSTER },
      ]);
    });

    it('reports a bad cluster inside a run as the cluster-by-cluster path does', async () => {
      const metadata = new MetadataRegions(CLUSTER);
      metadata.add(0x12000, CLUSTER, 'refcount block');
      await expect(mapperWith(data(4, 0x10000), { metadata }).map(0, 4 * CLUSTER)).rejects.toThrow(/data cluster at 0x12000 overlaps the refcount block/);
      await expect(mapperWith(data(4, 0x10000), { imageFileSize: 0x12800 }).map(0, 4 * CLUSTER)).rejects.toThrow(/at 0x12000 runs past the end/);
      // A short last cluster is fine when the range ends inside the file.
      expect(await mapperWith(data(4, 0x10000), { imageFileSize: 0x13800 }).map(0, 3 * CLUSTER + 0x800)).toEqual([
        { kind: 'data', guestOffset: 0, length: 3 * CLUSTER + 0x800, hostOffset: 0x10000 },
      ]);
    });
  });
});
