import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { valueOrDiskError } from './fuzz-support.js';
import { decodeBitmapDirectory } from './bitmap-directory.js';
import { decodeHeader } from './header.js';
import { decodeHeaderExtensions } from './header-extensions.js';
import { MAX_BITMAP_NAME } from './limits.js';
import { fixtureBytes } from './test-fixtures.js';

// Property/fuzz tests over bitmap directory bytes: random bytes, random counts, entries with lying name and
// extra-data lengths, mutations of a real directory. Decoding ends in entries or a DiskError. Fixed seeds.


function decode(bytes: Uint8Array, count: number): void {
  const entries = valueOrDiskError('decodeBitmapDirectory', () => decodeBitmapDirectory(bytes, count));
  if (entries === undefined) return;
  expect(entries.length).toBe(count);
  for (const e of entries) {
    expect(Number.isSafeInteger(e.tableOffset) && e.tableOffset >= 0).toBe(true);
    expect(e.name.length).toBeGreaterThan(0);
    expect(e.extraData.length).toBeLessThanOrEqual(bytes.length);
    expect(new TextEncoder().encode(e.name).length).toBeLessThanOrEqual(MAX_BITMAP_NAME * 3);
  }
}

const count = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(65535, 65536, 0x7fffffff, 0xffffffff) },
);

const rawEntry = fc.record({
  tableOffset: fc.oneof(fc.constantFrom(0n, 0x50000n, 2n ** 53n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  head: fc.uint8Array({ minLength: 10, maxLength: 10 }), // table size, flags, type, granularity
  name: fc.uint8Array({ minLength: 0, maxLength: 30 }),
  nameSizeLie: fc.option(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 1023, 1024)), { freq: 6 }),
  extra: fc.uint8Array({ maxLength: 40 }),
  extraSizeLie: fc.option(fc.oneof(fc.nat({ max: 4096 }), fc.constantFrom(0x7fffffff, 0xffffffff)), { freq: 6 }),
});

function layOut(entries: Array<typeof rawEntry extends fc.Arbitrary<infer T> ? T : never>): Uint8Array {
  const parts = entries.map((e) => {
    const bytes = new Uint8Array(Math.ceil((24 + e.extra.length + e.name.length) / 8) * 8);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, e.tableOffset);
    bytes.set(e.head, 8);
    v.setUint16(18, e.nameSizeLie ?? e.name.length);
    v.setUint32(20, e.extraSizeLie ?? e.extra.length);
    bytes.set(e.extra, 24);
    bytes.set(e.name, 24 + e.extra.length);
    return bytes;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function realDirectory(): { bytes: Uint8Array; count: number } {
  const image = fixtureBytes('bitmaps.qcow2');
  const header = decodeHeader(image);
  const ext = decodeHeaderExtensions(image.subarray(0, 2 ** header.clusterBits), header).bitmaps!;
  return { bytes: image.slice(ext.directoryOffset, ext.directoryOffset + ext.directorySize), count: ext.nbBitmaps };
}

describe('bitmap directory fuzz: decodeBitmapDirectory ends in entries or a DiskError', () => {
  it('the real directory decodes (sanity)', () => {
    const { bytes, count: n } = realDirectory();
    expect(decodeBitmapDirectory(bytes, n)).toHaveLength(n);
  });

  it('fully random bytes with random counts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), count, (bytes, n) => decode(bytes, n)),
      { seed: 0xb101, numRuns: 1500 },
    );
  });

  it('laid-out entries with lying name/extra lengths, random counts and truncation', () => {
    fc.assert(
      fc.property(fc.array(rawEntry, { maxLength: 12 }), fc.option(count), fc.nat(), (entries, n, cut) => {
        const table = layOut(entries);
        decode(table, n ?? entries.length);
        decode(table.subarray(0, table.length === 0 ? 0 : cut % (table.length + 1)), n ?? entries.length);
      }),
      { seed: 0xb102, numRuns: 1500 },
    );
  });

  it('random byte mutations of the real directory', () => {
    const { bytes, count: n } = realDirectory();
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: Math.max(0, bytes.length - 1) }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: -1, max: 2 }),
        (mutations, delta) => {
          const copy = bytes.slice();
          for (const m of mutations) copy[m.at] = m.value;
          decode(copy, Math.max(0, n + delta));
        },
      ),
      { seed: 0xb103, numRuns: 1500 },
    );
  });
});
