import { describe, expect, it } from 'vitest';
import { TableCache } from '@q/cache';
import { encodeL2Entry, type Geometry, type L2EntryFields } from '@q/format';
import { ClusterMapper } from './cluster-mapper.js';
import { L1Table } from './l1-table.js';
import { L2Writer, tableReferences, type L2WriterOptions } from './l2-writer.js';
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

const standard = (hostOffset: number, zero = false): L2EntryFields => ({ compressed: false, hostOffset, compressedBytes: 0, copied: true, allocMask: zero ? 0 : 1, zeroMask: zero ? 1 : 0 });
const compressed = (hostOffset: number, compressedBytes: number): L2EntryFields => ({ compressed: true, hostOffset, compressedBytes, copied: false, allocMask: 0, zeroMask: 0 });

/** An L2 table with `entries` at the given indexes, and a mapper that checks entries against a 1 MiB file. */
function tableWith(entries: Array<[number, L2EntryFields]>): { view: DataView; mapper: ClusterMapper } {
  const view = new DataView(new ArrayBuffer(CLUSTER));
  for (const [index, entry] of entries) encodeL2Entry(view, index, entry, geometry);
  const mapper = new ClusterMapper({
    geometry,
    l1: new L1Table(new Uint8Array(16), 0x3000, CLUSTER, 'test.qcow2'),
    l2Cache: new TableCache({ budgetBytes: 1 << 20, tableBytes: CLUSTER, load: async () => new Uint8Array(CLUSTER) }),
    imageFileSize: 0x100000,
    metadata: new MetadataRegions(CLUSTER),
    name: 'test.qcow2',
  });
  return { view, mapper };
}

describe('tableReferences', () => {
  it('lists the clusters of data, preallocated zeros and compressed data in entry order, each compressed cluster it touches', () => {
    const { view, mapper } = tableWith([
      [0, standard(0x10000)],
      [3, standard(0, true)], // a zero cluster without a host cluster: nothing
      [7, compressed(0x20f00, 0x400)], // crosses from cluster 0x20 into 0x21
      [9, standard(0x30000, true)], // preallocated zero cluster: still referenced
      [511, standard(0x11000)],
    ]);
    expect(tableReferences(view, geometry, (at, index) => mapper.decodeEntry(at, index))).toEqual([0x10, 0x20, 0x21, 0x30, 0x11]);
  });

  it('decodes every entry that is not empty, so a bad pointer is an error rather than a skipped cluster', () => {
    const { view, mapper } = tableWith([[5, standard(0x200000)]]); // past the end of the 1 MiB file
    expect(() => tableReferences(view, geometry, (at, index) => mapper.decodeEntry(at, index))).toThrow(/past the end of the file/);
  });
});

describe('L2Writer.fillEntries', () => {
  const extended: Geometry = { ...geometry, extendedL2: true, l2EntryBytes: 16, l2Entries: 256, l2Coverage: 256 * CLUSTER, subclusterSize: CLUSTER / 32 };
  // fillEntries only needs the geometry.
  const writerFor = (g: Geometry): L2Writer => new L2Writer({ geometry: g } as unknown as L2WriterOptions);

  it.each([
    ['standard', geometry, { hostOffset: 0, copied: false, zero: true }, { ...standard(0, true), copied: false }],
    ['extended L2', extended, { hostOffset: 0x50000, copied: true, allocMask: 0, zeroMask: 0xffff_ffff }, { ...standard(0x50000), allocMask: 0, zeroMask: 0xffff_ffff }],
  ] as const)('gives the bytes of encoding each entry, and nothing outside the range (%s)', (_name, g, entry, fields) => {
    for (const [index, count] of [
      [0, 1],
      [3, 300 % g.l2Entries],
      [5, 2],
      [0, g.l2Entries],
      [g.l2Entries - 7, 7],
    ] as const) {
      const filled = new DataView(new ArrayBuffer(CLUSTER));
      new Uint8Array(filled.buffer).fill(0xaa);
      writerFor(g).fillEntries(filled, index, count, entry);
      const expected = new DataView(new ArrayBuffer(CLUSTER));
      new Uint8Array(expected.buffer).fill(0xaa);
      for (let i = index; i < index + count; i++) encodeL2Entry(expected, i, fields, g);
      expect(new Uint8Array(filled.buffer)).toEqual(new Uint8Array(expected.buffer));
    }
  });
});
