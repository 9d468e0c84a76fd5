import { describe, expect, it } from 'vitest';
import { view } from './bytes.js';
import { decodeHeader } from './header.js';
import { findNonZeroRefcount, findZeroRefcount, getRefcount, maxRefcount, setRefcount, setRefcountRun } from './refcount-block.js';
import { fixtureBytes } from './test-fixtures.js';

/** The first refcount block of a fixture. */
function firstRefcountBlock(name: string): { block: Uint8Array; order: number } {
  const bytes = fixtureBytes(name);
  const header = decodeHeader(bytes);
  const v = view(bytes);
  const blockOffset = v.getUint32(header.refcountTableOffset + 4);
  return { block: bytes.subarray(blockOffset, blockOffset + 2 ** header.clusterBits), order: header.refcountOrder };
}

describe('refcount blocks written by qemu-img', () => {
  it('reads 1-bit refcounts packed from the least significant bit', () => {
    const { block, order } = firstRefcountBlock('refcount1-4k.qcow2');
    expect(order).toBe(0);
    // Header, refcount table, refcount block and L1 table are the first four clusters: all at refcount 1.
    for (let cluster = 0; cluster < 4; cluster++) expect(getRefcount(block, cluster, order)).toBe(1);
    expect(block[0]! & 0x0f).toBe(0x0f);
  });

  it('reads 16-bit and 64-bit refcounts as big-endian integers', () => {
    for (const name of ['v3-64k.qcow2', 'refcount64.qcow2']) {
      const { block, order } = firstRefcountBlock(name);
      expect(getRefcount(block, 0, order), name).toBe(1);
      expect(getRefcount(block, 1, order), name).toBe(1);
    }
  });

  it('packs narrow widths exactly as the spec examples say', () => {
    const cases: Array<[number, number[]]> = [[0, [0x0f]], [1, [0x55]], [2, [0x11, 0x11]]];
    for (const [order, expected] of cases) {
      const block = new Uint8Array(8);
      for (let i = 0; i < 4; i++) setRefcount(block, i, order, 1);
      expect(Array.from(block.subarray(0, expected.length)), `order ${order}`).toEqual(expected);
    }
  });

  it('stores and reads back every width at its limits without touching neighbours', () => {
    for (let order = 0; order <= 6; order++) {
      const block = new Uint8Array(64);
      const max = maxRefcount(order);
      setRefcount(block, 3, order, max);
      setRefcount(block, 4, order, 1);
      expect(getRefcount(block, 2, order)).toBe(0);
      expect(getRefcount(block, 3, order)).toBe(max);
      expect(getRefcount(block, 4, order)).toBe(1);
      expect(getRefcount(block, 5, order)).toBe(0);
      if (order < 6) expect(() => setRefcount(block, 0, order, max + 1)).toThrow(/does not fit/);
    }
  });

  it('writes big-endian bytes at 8 bits and more, as a DataView would', () => {
    const values: Array<[number, number]> = [[3, 0xab], [4, 0xbeef], [5, 0xdeadbeef], [6, 2 ** 53 - 1]];
    for (const [order, value] of values) {
      const block = new Uint8Array(32);
      setRefcount(block, 1, order, value);
      const bytes = 1 << (order - 3);
      const expected = new DataView(new ArrayBuffer(8));
      expected.setBigUint64(0, BigInt(value));
      expect(Array.from(block.subarray(bytes, 2 * bytes)), `order ${order}`).toEqual(Array.from(new Uint8Array(expected.buffer, 8 - bytes)));
    }
  });

  it('finds the first zero refcount from an index on, at every width', () => {
    for (let order = 0; order <= 6; order++) {
      const block = new Uint8Array(64);
      const entries = (64 * 8) >> order;
      for (let i = 0; i < entries; i++) setRefcount(block, i, order, 1);
      expect(findZeroRefcount(block, 0, entries, order), `order ${order}: full`).toBe(-1);
      setRefcount(block, 2, order, 0);
      setRefcount(block, entries - 1, order, 0);
      expect(findZeroRefcount(block, 0, entries, order), `order ${order}`).toBe(2);
      expect(findZeroRefcount(block, 3, entries, order), `order ${order}`).toBe(entries - 1);
      // A count of 256 has a zero low byte: only a whole entry of zeros is free.
      if (order >= 4) {
        setRefcount(block, 2, order, 256);
        expect(findZeroRefcount(block, 0, entries, order), `order ${order}`).toBe(entries - 1);
      }
    }
  });
});

describe('setRefcountRun', () => {
  it('sets what setRefcount sets entry by entry, for every width, and nothing around the run', () => {
    for (let order = 0; order <= 6; order++) {
      const one = new Uint8Array(512).fill(0x5a);
      const run = new Uint8Array(512).fill(0x5a);
      const entries = (512 * 8) >> order;
      const start = Math.min(3, entries - 1);
      const count = Math.min(40, entries - start);
      for (let i = 0; i < count; i++) setRefcount(one, start + i, order, 1);
      setRefcountRun(run, start, count, order, 1);
      expect(run, `order ${order}`).toEqual(one);
    }
  });
});

describe('findNonZeroRefcount', () => {
  it('finds the first entry in use from an index, for every width', () => {
    for (let order = 0; order <= 6; order++) {
      const block = new Uint8Array(512);
      const entries = (512 * 8) >> order;
      setRefcount(block, 2, order, 1);
      setRefcount(block, entries - 1, order, 1);
      expect(findNonZeroRefcount(block, 0, entries, order), `order ${order}`).toBe(2);
      expect(findNonZeroRefcount(block, 3, entries, order), `order ${order}`).toBe(entries - 1);
      expect(findNonZeroRefcount(block, 3, entries - 1, order), `order ${order}`).toBe(-1);
    }
  });
});
