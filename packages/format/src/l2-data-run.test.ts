import { describe, expect, it } from 'vitest';
import { encodeDataClusterRun, encodeL2Entry, type L2EntryContext } from './l2-entry.js';

describe('encodeDataClusterRun', () => {
  it('writes what encodeL2Entry writes for each cluster of the run (standard and extended, offsets past 4 GiB)', () => {
    for (const extendedL2 of [false, true]) {
      for (const clusterBits of [9, 16, 21]) {
        const ctx: L2EntryContext = { clusterBits, extendedL2, externalDataFile: false };
        const entries = 64;
        const one = new DataView(new ArrayBuffer(entries * 16));
        const run = new DataView(new ArrayBuffer(entries * 16));
        // Something there before: the run must overwrite every word of its entries, and only those.
        new Uint8Array(one.buffer).fill(0xa5);
        new Uint8Array(run.buffer).fill(0xa5);
        const first = 2 ** 32 - 3 * 2 ** clusterBits;
        for (let i = 5; i < 50; i++) {
          encodeL2Entry(one, i, { compressed: false, compressedBytes: 0, hostOffset: first + (i - 5) * 2 ** clusterBits, copied: true, allocMask: 0, zeroMask: 0 }, ctx);
        }
        encodeDataClusterRun(run, 5, 45, first, ctx);
        expect(new Uint8Array(run.buffer)).toEqual(new Uint8Array(one.buffer));
      }
    }
  });

  it('refuses offsets an entry cannot hold', () => {
    const table = new DataView(new ArrayBuffer(64));
    expect(() => encodeDataClusterRun(table, 0, 2, 2 ** 56 - 65536, { clusterBits: 16, extendedL2: false, externalDataFile: false })).toThrow(/does not fit/);
  });
});
