import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { valueOrDiskError } from './fuzz-support.js';
import { decodeL1Entry, l1EntryOffset } from './l1-entry.js';
import { decodeCompressedDescriptor, encodeCompressedDescriptor } from './compressed-descriptor.js';
import { decodeL2Entry, type L2EntryContext } from './l2-entry.js';
import { getRefcount, maxRefcount, setRefcount } from './refcount-block.js';

// Property/fuzz tests over mapping-table bytes: L2 tables (standard and extended layouts, cluster bits 9..21),
// compressed descriptors, L1 entries and refcount blocks. Whatever the bytes, decoding ends in a value or a
// DiskError, and what it returns is something the mapper can use without further checks. Fixed seeds.


const context: fc.Arbitrary<L2EntryContext> = fc
  .record({ clusterBits: fc.integer({ min: 9, max: 21 }), extended: fc.boolean(), externalDataFile: fc.boolean() })
  // The header refuses extended L2 below 16 KiB clusters, so the decoder never sees that combination.
  .map(({ clusterBits, extended, externalDataFile }) => ({ clusterBits, extendedL2: extended && clusterBits >= 14, externalDataFile }));

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

/** Entries that look like real ones more often than uniform random bits do. */
const structuredEntry = fc
  .record({
    copied: fc.boolean(),
    compressed: fc.boolean(),
    zero: fc.boolean(),
    cluster: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 20n }), fc.bigInt({ min: 0n, max: 2n ** 47n - 1n })),
    low: fc.constantFrom(0n, 0n, 0n, 0x200n, 0x1fen, 0x1ffn),
    reservedHigh: fc.constantFrom(0n, 0n, 0n, 1n << 56n, 0x3fn << 56n),
  })
  .map(({ copied, compressed, zero, cluster, low, reservedHigh }) => {
    let entry = (cluster << 9n) | low | reservedHigh;
    if (zero) entry |= 1n;
    if (compressed) entry |= 1n << 62n;
    if (copied) entry |= 1n << 63n;
    return BigInt.asUintN(64, entry);
  });

const bitmap = fc.oneof(
  u64,
  fc.record({ alloc: fc.integer({ min: 0, max: 0xffffffff }), zero: fc.integer({ min: 0, max: 0xffffffff }) }).map(({ alloc, zero }) => (BigInt(zero) << 32n) | BigInt(alloc)),
  fc.integer({ min: 0, max: 0xffffffff }).map((alloc) => BigInt(alloc)),
  fc.constant(0n),
);

const tableEntries = fc.array(fc.record({ entry: fc.oneof(u64, structuredEntry), bitmap }), { minLength: 1, maxLength: 64 });

/** Decodes every entry of the table; checks what comes back is usable. */
function decodeTable(ctx: L2EntryContext, entries: Array<{ entry: bigint; bitmap: bigint }>, tableBytes?: number): void {
  const entryBytes = ctx.extendedL2 ? 16 : 8;
  const bytes = new Uint8Array(tableBytes ?? entries.length * entryBytes);
  const v = new DataView(bytes.buffer);
  const count = Math.floor(bytes.length / entryBytes);
  for (let i = 0; i < Math.min(count, entries.length); i++) {
    v.setBigUint64(i * entryBytes, entries[i]!.entry);
    if (ctx.extendedL2) v.setBigUint64(i * entryBytes + 8, entries[i]!.bitmap);
  }
  const clusterSize = 2 ** ctx.clusterBits;
  for (let i = 0; i < count; i++) {
    const e = valueOrDiskError(`decodeL2Entry #${i}`, () => decodeL2Entry(v, i, ctx));
    if (e === undefined) continue;
    expect(Number.isSafeInteger(e.hostOffset) && e.hostOffset >= 0, `host offset ${e.hostOffset}`).toBe(true);
    if (e.compressed) {
      expect(e.compressedBytes).toBeGreaterThan(0);
      expect(e.compressedBytes).toBeLessThanOrEqual(2 ** (ctx.clusterBits - 8) * 512);
      expect(e.hostOffset).toBeLessThan(2 ** 53);
    } else {
      expect(e.compressedBytes).toBe(0);
      expect((e.allocMask & e.zeroMask) >>> 0, 'no subcluster both allocated and zero').toBe(0);
      expect(e.allocMask >>> 0).toBe(e.allocMask);
      expect(e.zeroMask >>> 0).toBe(e.zeroMask);
      if (e.allocMask !== 0 && !ctx.externalDataFile) {
        expect(e.hostOffset, 'allocated data has a host cluster').toBeGreaterThan(0);
        expect(e.hostOffset % clusterSize, 'allocated data is cluster aligned').toBe(0);
      }
    }
  }
}

describe('L2 table fuzz: decodeL2Entry ends in a value or a DiskError', () => {
  it('random and structured entries, standard and extended layouts, cluster bits 9..21', () => {
    fc.assert(
      fc.property(context, tableEntries, (ctx, entries) => decodeTable(ctx, entries)),
      { seed: 0x12f1, numRuns: 3000 },
    );
  });

  it('whole random L2 tables (one cluster of random bytes, cluster bits 9..16)', () => {
    fc.assert(
      fc.property(
        context.filter((c) => c.clusterBits <= 16),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (ctx, seed) => {
          const size = 2 ** ctx.clusterBits;
          const bytes = new Uint8Array(size);
          let x = seed | 1;
          for (let i = 0; i < size; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            bytes[i] = x & 0xff;
          }
          const v = new DataView(bytes.buffer);
          const entryBytes = ctx.extendedL2 ? 16 : 8;
          for (let i = 0; i < size / entryBytes; i++) valueOrDiskError(`decodeL2Entry #${i}`, () => decodeL2Entry(v, i, ctx));
        },
      ),
      { seed: 0x12f2, numRuns: 150 },
    );
  });

  it('compressed descriptors: any bits decode to a bounded, safe extent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (bits, hi, lo) => {
        const d = valueOrDiskError('decodeCompressedDescriptor', () => decodeCompressedDescriptor(hi, lo, bits));
        if (d === undefined) return;
        expect(Number.isSafeInteger(d.hostOffset) && d.hostOffset >= 0).toBe(true);
        expect(d.compressedBytes).toBeGreaterThan(0);
        expect(d.compressedBytes).toBeLessThanOrEqual(2 ** (bits - 8) * 512);
      }),
      { seed: 0x12f3, numRuns: 3000 },
    );
  });

  it('compressed descriptors round-trip for every representable offset and length', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 9, max: 21 }).chain((bits) =>
          fc.record({
            bits: fc.constant(bits),
            // The descriptor holds 62 - (bits - 8) offset bits; we address at most 2^53.
            offset: fc.oneof(fc.integer({ min: 0, max: 2 ** 24 }), fc.integer({ min: 0, max: Math.min(2 ** 53, 2 ** (62 - (bits - 8))) - 1 })),
            length: fc.integer({ min: 1, max: 2 ** bits }),
          }),
        ),
        ({ bits, offset, length }) => {
          const [hi, lo] = encodeCompressedDescriptor(offset, length, bits);
          const d = decodeCompressedDescriptor(hi, lo, bits);
          expect(d.hostOffset).toBe(offset);
          expect(d.compressedBytes).toBeGreaterThanOrEqual(length);
          expect(d.compressedBytes - length).toBeLessThan(512);
        },
      ),
      { seed: 0x12f4, numRuns: 2000 },
    );
  });
});

describe('L1 entry and refcount block fuzz', () => {
  it('L1 entries: any bits give a 512-aligned safe offset or a DiskError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (hi, lo) => {
        const e = valueOrDiskError('decodeL1Entry', () => decodeL1Entry(hi, lo));
        const offset = valueOrDiskError('l1EntryOffset', () => l1EntryOffset(hi, lo));
        expect(e?.l2Offset).toBe(offset);
        if (offset !== undefined) {
          expect(Number.isSafeInteger(offset) && offset >= 0).toBe(true);
          expect(offset % 512).toBe(0);
        }
      }),
      { seed: 0x12f5, numRuns: 3000 },
    );
  });

  it('refcount blocks: every index of a random block reads as a value or a DiskError; set/get round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ minLength: 8, maxLength: 512 }), fc.nat(), fc.double({ min: 0, max: 1, noNaN: true }), (order, raw, pick, fraction) => {
        const block = raw.slice(0, raw.length - (raw.length % 8));
        const entries = (block.length * 8) / 2 ** order;
        for (let i = 0; i < entries; i++) {
          const value = valueOrDiskError('getRefcount', () => getRefcount(block, i, order));
          if (value !== undefined) expect(Number.isSafeInteger(value) && value >= 0 && value <= maxRefcount(order)).toBe(true);
        }
        const index = pick % entries;
        const value = Math.floor(fraction * maxRefcount(order));
        setRefcount(block, index, order, value);
        expect(getRefcount(block, index, order)).toBe(value);
      }),
      { seed: 0x12f6, numRuns: 600 },
    );
  });
});
