import { describe, expect, it } from 'vitest';
import { view } from './bytes.js';
import { decodeHeader } from './header.js';
import { geometryOf } from './geometry.js';
import { decodeL1Entry, encodeL1Entry } from './l1-entry.js';
import { decodeCompressedDescriptor, encodeCompressedDescriptor } from './compressed-descriptor.js';
import { decodeL2Entry, encodeL2Entry, l2EntryCopied, ALL_SUBCLUSTERS } from './l2-entry.js';
import { fixtureBytes } from './test-fixtures.js';

/** The first L2 table of a fixture, found through its header and L1 table. */
function firstL2(name: string) {
  const bytes = fixtureBytes(name);
  const header = decodeHeader(bytes);
  const geometry = geometryOf(header);
  const v = view(bytes);
  const l1 = decodeL1Entry(v.getUint32(header.l1TableOffset), v.getUint32(header.l1TableOffset + 4));
  return { geometry, l1, table: view(bytes.subarray(l1.l2Offset, l1.l2Offset + geometry.clusterSize)) };
}

describe('L1 and L2 entries written by qemu-io', () => {
  it('decodes standard entries: data with COPIED, the zero flag, unallocated', () => {
    const { geometry, l1, table } = firstL2('v3-64k.qcow2');
    expect(l1.copied).toBe(true);
    expect(l1.reservedBits).toBe(false);
    const data = decodeL2Entry(table, 0, geometry);
    expect(data).toMatchObject({ compressed: false, copied: true, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 });
    expect(data.hostOffset % geometry.clusterSize).toBe(0);
    // qemu-io "write -z 2M 64k" over an allocated cluster: zero flag, cluster kept (preallocated zero).
    const zero = decodeL2Entry(table, 32, geometry);
    expect(zero).toMatchObject({ allocMask: 0, zeroMask: ALL_SUBCLUSTERS });
    expect(decodeL2Entry(table, 1, geometry)).toMatchObject({ hostOffset: 0, allocMask: 0, zeroMask: 0 });
  });

  it('decodes extended entries: allocation and zero bitmaps per subcluster', () => {
    const { geometry, table } = firstL2('extl2-32k.qcow2');
    expect(geometry).toMatchObject({ extendedL2: true, l2EntryBytes: 16, subclusterSize: 1024 });
    // "write -P 0x0e 0 1k": subcluster 0 allocated, nothing else.
    expect(decodeL2Entry(table, 0, geometry)).toMatchObject({ allocMask: 0b1, zeroMask: 0 });
    // "write -P 0x0f 33k 2k" and "write -z 40k 4k" in cluster 1 (32k..64k): subclusters 1-2 data, 8-11 zero.
    expect(decodeL2Entry(table, 1, geometry)).toMatchObject({ allocMask: 0b110, zeroMask: 0xf00 });
  });

  it('decodes compressed descriptors as QEMU laid them out', () => {
    const { geometry, table } = firstL2('zlib-4k.qcow2');
    const entry = decodeL2Entry(table, 0, geometry);
    expect(entry.compressed).toBe(true);
    expect(entry.copied).toBe(false);
    expect(entry.compressedBytes).toBeGreaterThan(0);
    expect(entry.compressedBytes).toBeLessThanOrEqual(geometry.clusterSize + 512);
  });

  it('round-trips compressed descriptors for every cluster size', () => {
    for (let bits = 9; bits <= 21; bits++) {
      for (const [offset, length] of [[0x50000, 433], [0x123456789a, Math.min(4096, 2 ** bits)], [512 * 7 + 13, 2 ** bits]]) {
        const [hi, lo] = encodeCompressedDescriptor(offset!, length!, bits);
        const decoded = decodeCompressedDescriptor(hi, lo, bits);
        expect(decoded.hostOffset).toBe(offset);
        expect(decoded.compressedBytes).toBeGreaterThanOrEqual(length!);
        expect(decoded.compressedBytes - length!).toBeLessThan(512);
      }
    }
  });

  it('refuses compressed data too long for the descriptor', () => {
    expect(() => encodeCompressedDescriptor(0x50000, 2 * 512 + 1, 9)).toThrow(/do not fit/);
  });

  it('round-trips L1 entries', () => {
    const [hi, lo] = encodeL1Entry(0x12_3456_0000, true);
    expect(decodeL1Entry(hi, lo)).toEqual({ l2Offset: 0x12_3456_0000, copied: true, reservedBits: false });
  });

  it('refuses a subcluster both allocated and zero, and an unaligned host offset', () => {
    const table = new DataView(new ArrayBuffer(32));
    table.setUint32(4, 0x40000);
    table.setUint32(8, 1);
    table.setUint32(12, 1);
    expect(() => decodeL2Entry(table, 0, { clusterBits: 16, extendedL2: true, externalDataFile: false })).toThrow(/both allocated and zero/);
    table.setUint32(4, 0x40200);
    expect(() => decodeL2Entry(table, 0, { clusterBits: 16, extendedL2: false, externalDataFile: false })).toThrow(/unaligned/);
  });
});

describe('l2EntryCopied', () => {
  it('reads COPIED from the entry bytes as decodeL2Entry does, standard and extended', () => {
    for (const extendedL2 of [false, true]) {
      const context = { clusterBits: 16, extendedL2, externalDataFile: false };
      const table = new Uint8Array(4 * (extendedL2 ? 16 : 8));
      const tableView = new DataView(table.buffer);
      encodeL2Entry(tableView, 1, { compressed: false, hostOffset: 0x50000, compressedBytes: 0, copied: true, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 }, context);
      encodeL2Entry(tableView, 2, { compressed: false, hostOffset: 0x60000, compressedBytes: 0, copied: false, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 }, context);
      for (let index = 0; index < 4; index++) {
        expect(l2EntryCopied(table, index, extendedL2)).toBe(decodeL2Entry(tableView, index, context).copied);
      }
      expect(l2EntryCopied(table, 1, extendedL2)).toBe(true);
    }
  });
});
