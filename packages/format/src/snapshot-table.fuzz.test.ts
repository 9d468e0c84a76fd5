import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { valueOrDiskError } from './fuzz-support.js';
import { MAX_SNAPSHOT_EXTRA_DATA } from './limits.js';
import { decodeSnapshotTable, encodeSnapshotTable, measureSnapshotTable, snapshotEntrySize, type SnapshotEntry } from './snapshot-table.js';
import { fixtureBytes } from './test-fixtures.js';

// Property/fuzz tests over snapshot table bytes: random bytes, random counts (small, at the 65536 limit, lying),
// entries with plausible and lying lengths, mutations of a real table. Decoding ends in entries or a DiskError,
// measureSnapshotTable agrees with decodeSnapshotTable, and tables that decode re-encode to themselves. Fixed seeds.


/** Decodes, and checks decode/measure agreement and the limits. */
function decode(bytes: Uint8Array, count: number): SnapshotEntry[] | undefined {
  const entries = valueOrDiskError('decodeSnapshotTable', () => decodeSnapshotTable(bytes, count));
  const measured = valueOrDiskError('measureSnapshotTable', () => measureSnapshotTable(bytes, count));
  if (entries !== undefined) {
    expect(entries.length).toBe(count);
    expect(measured, 'measure agrees that the entries fit').toBeDefined();
    expect(measured!).toBeLessThanOrEqual(Math.ceil(bytes.length / 8) * 8);
    for (const e of entries) {
      expect(e.extraData.length).toBeLessThanOrEqual(MAX_SNAPSHOT_EXTRA_DATA);
      for (const n of [e.l1TableOffset, e.vmClockNanoseconds, e.vmStateSize, e.diskSize ?? 0, e.icount ?? 0]) {
        expect(Number.isSafeInteger(n) && n >= 0, `${n} is a safe value`).toBe(true);
      }
    }
  } else if (measured === undefined) {
    // Both refuse: fine.
  }
  return entries;
}

const count = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(65535, 65536, 65537, 0x7fffffff, 0xffffffff) },
);

interface RawEntry {
  l1Offset: bigint;
  l1Size: number;
  id: Uint8Array;
  name: Uint8Array;
  idLengthLie: number | null;
  nameLengthLie: number | null;
  extra: Uint8Array;
  extraSizeLie: number | null;
  head: Uint8Array;
}

const rawEntry: fc.Arbitrary<RawEntry> = fc.record({
  l1Offset: fc.oneof(fc.constantFrom(0n, 0x10000n, 2n ** 53n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  l1Size: fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.nat()),
  id: fc.uint8Array({ maxLength: 12 }),
  name: fc.uint8Array({ maxLength: 40 }),
  idLengthLie: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 8 }),
  nameLengthLie: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 8 }),
  extra: fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 24, maxLength: 24 }), fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array(0))),
  extraSizeLie: fc.option(fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constantFrom(1024, 1025, 0xffffffff)), { freq: 8 }),
  // date, vm clock, vm state size: 24 random bytes at 16..39
  head: fc.uint8Array({ minLength: 24, maxLength: 24 }),
});

/** Lays out entries as a table (lengths as given, lies included), padded to 8 as the format requires. */
function layOut(entries: RawEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const size = Math.ceil((40 + e.extra.length + e.id.length + e.name.length) / 8) * 8;
    const bytes = new Uint8Array(size);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, e.l1Offset);
    v.setUint32(8, e.l1Size >>> 0);
    v.setUint16(12, e.idLengthLie ?? e.id.length);
    v.setUint16(14, e.nameLengthLie ?? e.name.length);
    bytes.set(e.head, 16);
    v.setUint32(36, e.extraSizeLie ?? e.extra.length);
    bytes.set(e.extra, 40);
    bytes.set(e.id, 40 + e.extra.length);
    bytes.set(e.name, 40 + e.extra.length + e.id.length);
    parts.push(bytes);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The snapshot table of the snapshots fixture (two entries written by qemu-img). */
function realTable(): { bytes: Uint8Array; count: number } {
  const image = fixtureBytes('snapshots.qcow2');
  const v = new DataView(image.buffer, image.byteOffset);
  const offset = Number(v.getBigUint64(64));
  const count = v.getUint32(60);
  return { bytes: image.slice(offset, Math.min(image.length, offset + 4096)), count };
}

describe('snapshot table fuzz: decodeSnapshotTable ends in entries or a DiskError', () => {
  it('the real table decodes (sanity)', () => {
    const { bytes, count } = realTable();
    expect(decode(bytes, count)?.map((e) => e.name)).toHaveLength(count);
  });

  it('fully random bytes with random counts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), count, (bytes, n) => {
        decode(bytes, n);
      }),
      { seed: 0x5a01, numRuns: 1500 },
    );
  });

  it('laid-out entries with lying id/name/extra lengths, random counts and truncation', () => {
    fc.assert(
      fc.property(fc.array(rawEntry, { maxLength: 12 }), fc.option(count), fc.nat(), (entries, n, cut) => {
        const table = layOut(entries);
        const bytes = table.subarray(0, table.length === 0 ? 0 : cut % (table.length + 1));
        decode(bytes, n ?? entries.length);
        decode(table, n ?? entries.length);
      }),
      { seed: 0x5a02, numRuns: 1500 },
    );
  });

  it('random byte mutations of the real table', () => {
    const { bytes, count: n } = realTable();
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat({ max: 400 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 4 }), (mutations, extra) => {
        const copy = bytes.slice();
        for (const m of mutations) copy[m.at] = m.value;
        decode(copy, n + extra - 2 < 0 ? 0 : n + extra - 2);
      }),
      { seed: 0x5a03, numRuns: 1500 },
    );
  });

  it('snapshotEntrySize of decoded entries equals their size in the table (mutated real tables)', () => {
    // The engine sizes the snapshot table's reserved range with snapshotEntrySize; it must match the bytes read.
    const { bytes, count: n } = realTable();
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat({ max: 400 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }), (mutations) => {
        const copy = bytes.slice();
        for (const m of mutations) copy[m.at] = m.value;
        const entries = decode(copy, n);
        if (entries === undefined) return;
        expect(entries.reduce((sum, e) => sum + snapshotEntrySize(e), 0)).toBe(measureSnapshotTable(copy, n));
      }),
      { seed: 0x5a05, numRuns: 1500 },
    );
  });

  it('a snapshot name that is not valid UTF-8 keeps its on-disk size (and bytes) through decode/encode', () => {
    const { bytes, count: n } = realTable();
    const copy = bytes.slice();
    const v = new DataView(copy.buffer);
    const nameAt = 40 + v.getUint32(36) + v.getUint16(12); // first entry's name
    copy[nameAt] = 0x80; // a lone continuation byte
    const entries = decodeSnapshotTable(copy, n);
    const onDisk = measureSnapshotTable(copy, n);
    expect(entries.reduce((sum, e) => sum + snapshotEntrySize(e), 0)).toBe(onDisk);
    expect(encodeSnapshotTable(entries)).toEqual(copy.subarray(0, onDisk));
  });

  it('tables that decode re-encode to an equivalent table', () => {
    fc.assert(
      fc.property(fc.array(rawEntry, { maxLength: 8 }), (raw) => {
        // No lies here: the entries are well-formed, but their fields are random.
        const table = layOut(raw.map((e) => ({ ...e, idLengthLie: null, nameLengthLie: null, extraSizeLie: null })));
        const entries = decode(table, raw.length);
        if (entries === undefined) return;
        const again = decode(encodeSnapshotTable(entries), entries.length);
        expect(again).toEqual(entries);
      }),
      { seed: 0x5a04, numRuns: 800 },
    );
  });
});
