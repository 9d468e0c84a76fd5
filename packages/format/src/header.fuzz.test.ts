import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { valueOrDiskError } from './fuzz-support.js';
import { checkIncompatibleFeatures } from './features.js';
import { geometryOf, l1EntriesFor } from './geometry.js';
import { decodeHeader, encodeHeader, type QcowHeader } from './header.js';
import { decodeBackingFileName, decodeHeaderExtensions } from './header-extensions.js';
import {
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO,
  EXT_DATA_FILE,
  EXT_FEATURE_NAMES,
  MAX_CLUSTER_BITS,
  MAX_L1_TABLE_BYTES,
  MAX_REFCOUNT_ORDER,
  MAX_REFCOUNT_TABLE_BYTES,
  MAX_SNAPSHOTS,
  MIN_CLUSTER_BITS,
} from './limits.js';
import { fixtureBytes } from './test-fixtures.js';

// Property/fuzz tests over header bytes and header extensions: whatever the bytes, decoding ends in a value or a
// DiskError (never a TypeError/RangeError: those mean a missing bound check), quickly, and what it accepts
// respects the limits it claims to enforce. Fixed seeds: every run is reproducible.


/** Everything the engine does with cluster 0 at open time, in order. */
function decodeCluster0(bytes: Uint8Array): QcowHeader | undefined {
  const header = valueOrDiskError('decodeHeader', () => decodeHeader(bytes));
  if (header === undefined) return undefined;
  checkAccepted(header);
  const extensions = valueOrDiskError('decodeHeaderExtensions', () => decodeHeaderExtensions(bytes, header));
  if (extensions !== undefined) {
    expect(extensions.end).toBeLessThanOrEqual(bytes.length);
    for (const ext of extensions.all) expect(ext.data.length).toBeLessThanOrEqual(bytes.length);
    valueOrDiskError('checkIncompatibleFeatures', () => checkIncompatibleFeatures(header, extensions.featureNames));
  }
  valueOrDiskError('decodeBackingFileName', () => decodeBackingFileName(bytes, header));
  const geometry = valueOrDiskError('geometryOf', () => geometryOf(header));
  if (geometry !== undefined) {
    const needed = valueOrDiskError('l1EntriesFor', () => l1EntriesFor(header.size, geometry));
    if (needed !== undefined) expect(Number.isFinite(needed)).toBe(true);
  }
  return header;
}

/** What decodeHeader accepted must be inside the limits it enforces, and survive encodeHeader unchanged. */
function checkAccepted(h: QcowHeader): void {
  expect([2, 3]).toContain(h.version);
  expect(h.clusterBits).toBeGreaterThanOrEqual(MIN_CLUSTER_BITS);
  expect(h.clusterBits).toBeLessThanOrEqual(MAX_CLUSTER_BITS);
  expect(h.headerLength).toBeLessThanOrEqual(2 ** h.clusterBits);
  expect(h.refcountOrder).toBeLessThanOrEqual(MAX_REFCOUNT_ORDER);
  expect(h.l1Size * 8).toBeLessThanOrEqual(MAX_L1_TABLE_BYTES);
  expect(h.refcountTableClusters * 2 ** h.clusterBits).toBeLessThanOrEqual(MAX_REFCOUNT_TABLE_BYTES);
  expect(h.nbSnapshots).toBeLessThanOrEqual(MAX_SNAPSHOTS);
  expect(h.cryptMethod).toBe(0);
  for (const n of [h.size, h.l1TableOffset, h.refcountTableOffset, h.snapshotsOffset, h.backingFileOffset]) {
    expect(Number.isSafeInteger(n) && n >= 0, `${n} is a safe offset`).toBe(true);
  }
}

/** An accepted header must survive encodeHeader unchanged (checked in its own tests, so a failure here does not
 * hide what the decode-only fuzzing finds). */
function checkRoundTrip(h: QcowHeader): void {
  const again = valueOrDiskError('decodeHeader(encodeHeader(h))', () => decodeHeader(encodeHeader(h)));
  expect(again, 're-encoded header decodes').toBeDefined();
  expect(again).toEqual(h);
}

const FIXTURES = ['v3-64k.qcow2', 'v2-512.qcow2', 'extl2-32k.qcow2', 'zstd-64k.qcow2', 'chain-top.qcow2', 'bitmaps.qcow2', 'datafile.qcow2', 'snapshots.qcow2', 'refcount1-4k.qcow2'];

/** The first cluster of each fixture (what the engine hands to decodeHeader). */
const clusters = FIXTURES.map((name) => {
  const bytes = fixtureBytes(name);
  const clusterSize = 2 ** new DataView(bytes.buffer, bytes.byteOffset).getUint32(20);
  return { name, cluster0: bytes.slice(0, clusterSize) };
});

const HEADER_U32_FIELDS = [4, 16, 20, 32, 36, 56, 60, 96, 100];
const HEADER_U64_FIELDS = [8, 24, 40, 48, 64, 72, 80, 88];
const interestingU32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 8, 9, 14, 16, 21, 22, 63, 64, 72, 100, 103, 104, 105, 112, 512, 1023, 1024, 4096, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const interestingU64 = fc.oneof(
  fc.constantFrom(0n, 1n, 512n, 0x10000n, 0x30000n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 56n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

type Mutation =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'u64'; at: number; value: bigint }
  | { kind: 'truncate'; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.oneof(fc.integer({ min: 0, max: 111 }), fc.nat({ max: 4095 })), value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('u32' as const), at: fc.constantFrom(...HEADER_U32_FIELDS), value: interestingU32 }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('u64' as const), at: fc.constantFrom(...HEADER_U64_FIELDS), value: interestingU64 }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), length: fc.nat({ max: 4200 }) }) },
);

function mutate(original: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = original.slice();
  for (const m of mutations) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (m.kind === 'truncate') bytes = bytes.slice(0, Math.min(bytes.length, m.length));
    else if (m.kind === 'byte') {
      if (m.at < bytes.length) bytes[m.at] = m.value;
    } else if (m.kind === 'u32') {
      if (m.at + 4 <= bytes.length) v.setUint32(m.at, m.value);
    } else if (m.at + 8 <= bytes.length) v.setBigUint64(m.at, m.value);
  }
  return bytes;
}

describe('header fuzz: decodeHeader and what follows it end in a value or a DiskError', () => {
  it('accepts every unmutated fixture header (sanity)', () => {
    for (const { name, cluster0 } of clusters) expect(decodeCluster0(cluster0), name).toBeDefined();
  });

  it('random mutations of real v2/v3 header clusters', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: clusters.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 8 }), (which, mutations) => {
        decodeCluster0(mutate(clusters[which]!.cluster0, mutations));
      }),
      { seed: 0x51f1, numRuns: 1500 },
    );
  });

  it('accepted mutated headers re-encode to the same header (encodeHeader round trip)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: clusters.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 8 }), (which, mutations) => {
        const header = decodeCluster0(mutate(clusters[which]!.cluster0, mutations));
        if (header !== undefined) checkRoundTrip(header);
      }),
      { seed: 0x51f6, numRuns: 1500 },
    );
  });

  it('encodeHeader handles the smallest v3 header_length (104: no compression type byte)', () => {
    const bytes = clusters.find((c) => c.name === 'v3-64k.qcow2')!.cluster0.slice();
    new DataView(bytes.buffer).setUint32(100, 104);
    const header = decodeHeader(bytes);
    expect(header.headerLength).toBe(104);
    checkRoundTrip(header);
  });

  it('fully random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2048 }), (bytes) => {
        decodeCluster0(bytes);
      }),
      { seed: 0x51f2, numRuns: 800 },
    );
  });

  it('random bytes behind a valid magic and version', () => {
    fc.assert(
      fc.property(fc.constantFrom(2, 3), fc.integer({ min: MIN_CLUSTER_BITS, max: 13 }), fc.uint8Array({ minLength: 0, maxLength: 8192 }), (version, clusterBits, rest) => {
        const bytes = new Uint8Array(Math.max(24, rest.length));
        bytes.set(rest.subarray(0, bytes.length));
        const v = new DataView(bytes.buffer);
        v.setUint32(0, 0x514649fb);
        v.setUint32(4, version);
        v.setUint32(20, clusterBits);
        decodeCluster0(bytes);
      }),
      { seed: 0x51f3, numRuns: 800 },
    );
  });

  it('every truncation of every fixture header cluster (first 1 KiB)', () => {
    for (const { cluster0 } of clusters) {
      for (let length = 0; length <= Math.min(1024, cluster0.length); length++) decodeCluster0(cluster0.subarray(0, length));
    }
  });
});

// --- header extensions ------------------------------------------------------------------------------------

const KNOWN_TYPES = [EXT_BACKING_FORMAT, EXT_FEATURE_NAMES, EXT_BITMAPS, EXT_CRYPTO, EXT_DATA_FILE];

interface ExtSpec {
  type: number;
  /** The length field as written (may lie). */
  length: number;
  data: Uint8Array;
}

const bitmapsData = fc
  .record({
    nb: fc.oneof(fc.constantFrom(0, 1, 65535, 65536, 0xffffffff), fc.nat()),
    reserved: fc.constantFrom(0, 0, 0, 1),
    size: interestingU64,
    offset: interestingU64,
  })
  .map(({ nb, reserved, size, offset }) => {
    const d = new Uint8Array(24);
    const v = new DataView(d.buffer);
    v.setUint32(0, nb >>> 0);
    v.setUint32(4, reserved);
    v.setBigUint64(8, size);
    v.setBigUint64(16, offset);
    return d;
  });

const featureTable = fc.array(fc.record({ kind: fc.integer({ min: 0, max: 4 }), bit: fc.integer({ min: 0, max: 255 }), name: fc.uint8Array({ maxLength: 46 }) }), { maxLength: 12 }).map((entries) => {
  const d = new Uint8Array(entries.length * 48);
  entries.forEach((e, i) => {
    d[i * 48] = e.kind;
    d[i * 48 + 1] = e.bit;
    d.set(e.name, i * 48 + 2);
  });
  return d;
});

const extension: fc.Arbitrary<ExtSpec> = fc
  .record({
    type: fc.oneof(fc.constantFrom(...KNOWN_TYPES), fc.integer({ min: 0, max: 0xffffffff })),
    data: fc.oneof(fc.uint8Array({ maxLength: 300 }), bitmapsData, featureTable),
    lie: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: interestingU32 }),
  })
  .map(({ type, data, lie }) => ({ type, data, length: lie ?? data.length }));

describe('header extension fuzz: decodeHeaderExtensions ends in a value or a DiskError', () => {
  const base = clusters.find((c) => c.name === 'v3-64k.qcow2')!.cluster0;
  const small = clusters.find((c) => c.name === 'refcount1-4k.qcow2')!.cluster0;

  it('random extension lists (known and unknown types, lying lengths, no end marker) after a valid v3 header', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('v3-64k.qcow2', 'refcount1-4k.qcow2'),
        fc.array(extension, { maxLength: 10 }),
        fc.boolean(),
        fc.option(fc.record({ offset: fc.nat({ max: 70000 }), size: fc.nat({ max: 1100 }) })),
        fc.option(fc.constantFrom(104, 112, 120, 4096)),
        (fixture, exts, endMarker, backing, headerLength) => {
          const original = fixture === 'v3-64k.qcow2' ? base : small;
          const bytes = original.slice();
          const v = new DataView(bytes.buffer);
          if (headerLength !== null && headerLength <= bytes.length) v.setUint32(100, headerLength);
          if (backing !== null) {
            v.setBigUint64(8, BigInt(backing.offset));
            v.setUint32(16, backing.size);
          }
          let at = v.getUint32(100);
          bytes.fill(0xee, at);
          for (const ext of exts) {
            if (at + 8 > bytes.length) break;
            v.setUint32(at, ext.type);
            v.setUint32(at + 4, ext.length);
            bytes.set(ext.data.subarray(0, Math.max(0, bytes.length - at - 8)), at + 8);
            at += 8 + Math.ceil(ext.data.length / 8) * 8;
          }
          if (endMarker && at + 8 <= bytes.length) bytes.fill(0, at, at + 8);
          decodeCluster0(bytes);
        },
      ),
      { seed: 0x51f4, numRuns: 800 },
    );
  });

  it('random bytes as the whole extension area', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 - 112 }), (area) => {
        const bytes = small.slice();
        bytes.fill(0, 112);
        bytes.set(area, 112);
        decodeCluster0(bytes);
      }),
      { seed: 0x51f5, numRuns: 600 },
    );
  });
});
