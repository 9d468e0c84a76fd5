import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { view } from './bytes.js';
import { compressedDescriptorFields, decodeCompressedDescriptor } from './compressed-descriptor.js';
import { decodeL1Entry, setL1EntryCopied, writeL1Entry } from './l1-entry.js';
import { ALL_SUBCLUSTERS, decodeL2Entry, encodeL2Entry, readL2EntryWords, setL2EntryCopied, type L2EntryContext, type L2EntryFields } from './l2-entry.js';
import { getRefcount, getRefcountExact, setRefcount, maxRefcount } from './refcount-block.js';
import { decodeRefcountTable, encodeRefcountTable, encodeRefcountTableEntry } from './refcount-table.js';

// Round trips of the mapping-table encoders against their decoders: whatever an encoder writes, the decoder reads
// back the same fields, and flag setters touch their bit only. Fixed seeds: every run is reproducible.

const context: fc.Arbitrary<L2EntryContext> = fc
  .record({ clusterBits: fc.integer({ min: 9, max: 21 }), extended: fc.boolean(), externalDataFile: fc.boolean() })
  .map(({ clusterBits, extended, externalDataFile }) => ({ clusterBits, extendedL2: extended && clusterBits >= 14, externalDataFile }));

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

/** An entry the engine could write in `ctx`, in decoded form (what decodeL2Entry must give back). */
function l2Entry(ctx: L2EntryContext): fc.Arbitrary<L2EntryFields> {
  const clusterSize = 2 ** ctx.clusterBits;
  const cluster = fc.integer({ min: 0, max: Math.floor((2 ** 53 - 1) / clusterSize) }).map((n) => n * clusterSize);
  const standard = fc.record({ hostOffset: cluster, copied: fc.boolean(), alloc: u32, zero: u32, kind: fc.constantFrom('data', 'zero', 'none') }).map(
    ({ hostOffset, copied, alloc, zero, kind }): L2EntryFields => {
      if (ctx.extendedL2) {
        // Alloc bits need a cluster; no subcluster is both.
        const allocMask = hostOffset === 0 && !(ctx.externalDataFile && copied) ? 0 : alloc;
        return { compressed: false, hostOffset, compressedBytes: 0, copied, allocMask, zeroMask: (zero & ~allocMask) >>> 0 };
      }
      const allocated = hostOffset !== 0 || (ctx.externalDataFile && copied);
      if (kind === 'zero') return { compressed: false, hostOffset, compressedBytes: 0, copied, allocMask: 0, zeroMask: ALL_SUBCLUSTERS };
      return { compressed: false, hostOffset, compressedBytes: 0, copied, allocMask: allocated ? ALL_SUBCLUSTERS : 0, zeroMask: 0 };
    },
  );
  const offsetLimit = Math.min(2 ** 53, 2 ** (62 - (ctx.clusterBits - 8)));
  const compressed = fc
    .record({ hostOffset: fc.integer({ min: 0, max: offsetLimit - 1 }), sectors: fc.integer({ min: 0, max: 2 ** (ctx.clusterBits - 8) - 1 }), copied: fc.boolean() })
    .map(({ hostOffset, sectors, copied }): L2EntryFields => ({
      compressed: true,
      hostOffset,
      // What the descriptor decodes to: from the offset to the end of its last sector.
      compressedBytes: (sectors + 1) * 512 - (hostOffset % 512),
      copied,
      allocMask: 0,
      zeroMask: 0,
    }));
  return fc.oneof(standard, compressed);
}

const contextAndEntries = context.chain((ctx) => fc.record({ ctx: fc.constant(ctx), entries: fc.array(l2Entry(ctx), { minLength: 1, maxLength: 16 }) }));

describe('L2 entry encoders', () => {
  it('decodeL2Entry reads back what encodeL2Entry wrote (standard, extended, compressed; cluster bits 9..21)', () => {
    fc.assert(
      fc.property(contextAndEntries, ({ ctx, entries }) => {
        const table = view(new Uint8Array(entries.length * (ctx.extendedL2 ? 16 : 8)).fill(0xa5));
        entries.forEach((entry, i) => encodeL2Entry(table, i, entry, ctx));
        entries.forEach((entry, i) => {
          expect(decodeL2Entry(table, i, ctx)).toEqual({ ...entry, reservedBits: false });
          const words = readL2EntryWords(table, i, ctx.extendedL2);
          const stored = ctx.extendedL2 && !entry.compressed;
          expect([words.allocMask, words.zeroMask]).toEqual(stored ? [entry.allocMask, entry.zeroMask] : [0, 0]);
          expect((words.hi & 0x8000_0000) !== 0).toBe(entry.copied);
        });
      }),
      { seed: 0x2e01, numRuns: 2000 },
    );
  });

  it('setL2EntryCopied changes bit 63 and nothing else', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(u32, { minLength: 4, maxLength: 4 }), fc.boolean(), (extendedL2, words, copied) => {
        const table = view(new Uint8Array(extendedL2 ? 16 : 8));
        words.slice(0, extendedL2 ? 4 : 2).forEach((word, i) => table.setUint32(i * 4, word));
        const before = new Uint8Array(table.buffer.slice(0));
        const changed = setL2EntryCopied(table, 0, copied, { extendedL2 });
        const after = new Uint8Array(table.buffer);
        expect((after[0]! & 0x80) !== 0).toBe(copied);
        expect(changed).toBe(((before[0]! & 0x80) !== 0) !== copied);
        expect(after[0]! & 0x7f).toBe(before[0]! & 0x7f);
        expect(after.subarray(1)).toEqual(before.subarray(1));
      }),
      { seed: 0x2e02, numRuns: 500 },
    );
  });

  it('compressedDescriptorFields agrees with decodeCompressedDescriptor on any bits it accepts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), u32, u32, (bits, hi, lo) => {
        const fields = compressedDescriptorFields(hi, lo, bits);
        let decoded: { hostOffset: number; compressedBytes: number } | undefined;
        try {
          decoded = decodeCompressedDescriptor(hi, lo, bits);
        } catch {
          expect(fields.offsetHi).toBeGreaterThanOrEqual(0x20_0000);
          return;
        }
        expect(decoded).toEqual({ hostOffset: fields.offsetHi * 2 ** 32 + fields.offsetLo, compressedBytes: fields.bytes });
      }),
      { seed: 0x2e03, numRuns: 2000 },
    );
  });
});

describe('L1 entry encoders', () => {
  it('decodeL1Entry reads back what writeL1Entry wrote', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 44 - 1 }), fc.boolean(), (l2Cluster, copied) => {
        const table = view(new Uint8Array(16).fill(0xff));
        writeL1Entry(table, 1, l2Cluster * 512, copied);
        expect(decodeL1Entry(table.getUint32(8), table.getUint32(12))).toEqual({ l2Offset: l2Cluster * 512, copied, reservedBits: false });
        expect(table.getUint32(0)).toBe(0xffff_ffff);
      }),
      { seed: 0x2e04, numRuns: 1000 },
    );
  });

  it('refuses an offset the entry cannot hold', () => {
    const table = view(new Uint8Array(8));
    expect(() => writeL1Entry(table, 0, 0x10100, false)).toThrow(/does not fit/);
    expect(() => writeL1Entry(table, 0, 2 ** 56, false)).toThrow(/does not fit/);
  });

  it('setL1EntryCopied changes bit 63 and nothing else', () => {
    fc.assert(
      fc.property(u32, u32, fc.boolean(), (hi, lo, copied) => {
        const table = view(new Uint8Array(8));
        table.setUint32(0, hi);
        table.setUint32(4, lo);
        expect(setL1EntryCopied(table, 0, copied)).toBe((hi >>> 31 === 1) !== copied);
        expect(table.getUint32(0) >>> 31 === 1).toBe(copied);
        expect(table.getUint32(0) & 0x7fff_ffff).toBe(hi & 0x7fff_ffff);
        expect(table.getUint32(4)).toBe(lo);
      }),
      { seed: 0x2e05, numRuns: 500 },
    );
  });
});

describe('refcount table and block encoders', () => {
  it('decodeRefcountTable reads back encodeRefcountTable and single entries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 16 }), fc.array(fc.integer({ min: 0, max: 2 ** 30 }), { minLength: 1, maxLength: 40 }), (bits, clusters) => {
        const clusterSize = 2 ** bits;
        const offsets = clusters.map((c) => c * clusterSize);
        const tableClusters = Math.ceil((offsets.length * 8) / clusterSize);
        const bytes = encodeRefcountTable(offsets, clusterSize, tableClusters);
        expect(bytes.length).toBe(tableClusters * clusterSize);
        const decoded = decodeRefcountTable(bytes, clusterSize);
        expect(decoded.slice(0, offsets.length)).toEqual(offsets);
        expect(decoded.slice(offsets.length).every((o) => o === 0)).toBe(true);
        const last = offsets.length - 1;
        bytes.set(encodeRefcountTableEntry(offsets[0]!), last * 8);
        expect(decodeRefcountTable(bytes, clusterSize)[last]).toBe(offsets[0]);
      }),
      { seed: 0x2e06, numRuns: 300 },
    );
  });

  it('decodeRefcountTable reads a table at any byte offset, ignores a partial last entry, refuses bad entries', () => {
    const table = encodeRefcountTable([0x30000, 0, 0x50000], 0x10000, 1);
    const shifted = new Uint8Array(table.length + 3);
    shifted.set(table, 1);
    const unaligned = shifted.subarray(1, 1 + 3 * 8 + 5);
    expect(decodeRefcountTable(unaligned, 0x10000)).toEqual([0x30000, 0, 0x50000]);
    const bad = table.slice(0, 16);
    bad[15] = 0x01;
    expect(() => decodeRefcountTable(bad, 0x10000)).toThrow(/entry 1 .* not cluster aligned/);
    expect(() => decodeRefcountTable(table.slice(0, 24), 0x10000, 0x50000)).toThrow(/refcount block 0x50000 \(table entry 2\) lies past the end/);
  });

  it('getRefcountExact agrees with getRefcount, and is exact past 2^53', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.nat({ max: 63 }), fc.double({ min: 0, max: 1, noNaN: true }), (order, index, fraction) => {
        const block = new Uint8Array(512);
        const value = Math.floor(fraction * maxRefcount(order));
        setRefcount(block, index, order, value);
        expect(getRefcountExact(block, index, order)).toBe(getRefcount(block, index, order));
      }),
      { seed: 0x2e07, numRuns: 1000 },
    );
    const block = new Uint8Array(16);
    view(block).setBigUint64(8, 2n ** 60n + 1n);
    expect(getRefcountExact(block, 1, 6)).toBe(2n ** 60n + 1n);
  });
});
