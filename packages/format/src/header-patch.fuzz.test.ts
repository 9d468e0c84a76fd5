import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeaderExtensions, encodeFeatureNameTable, encodeHeaderExtensions, type FeatureName, type HeaderExtension } from './header-extensions.js';
import { HEADER_FIELDS, readHeaderField, type HeaderField } from './header-fields.js';
import { encodeHeaderFields } from './header-patch.js';
import { decodeHeader, encodeHeader, type QcowHeader } from './header.js';
import { EXT_FEATURE_NAMES, INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from './limits.js';
import { fixtureBytes } from './test-fixtures.js';

// Round trips of the in-place header encoders: a patch of some fields, laid over a header, decodes to those fields
// and leaves the rest as they were; the extension area and the feature name table decode to what was encoded.

const FIXTURES = ['v3-64k.qcow2', 'v2-512.qcow2', 'zstd-64k.qcow2', 'snapshots.qcow2', 'refcount1-4k.qcow2'];
const headers = FIXTURES.map((name) => decodeHeader(fixtureBytes(name)));

/** The groups of adjacent fields the engine and the check change in place. */
const GROUPS: HeaderField[][] = [
  ['incompatibleFeatures'],
  ['l1Size', 'l1TableOffset'],
  ['refcountTableOffset', 'refcountTableClusters'],
  ['nbSnapshots'],
  ['nbSnapshots', 'snapshotsOffset'],
  ['l1Size', 'l1TableOffset', 'refcountTableOffset', 'refcountTableClusters'],
];

/** A header with new, still valid, values in every field a group may touch. */
const changed = fc
  .record({
    base: fc.constantFrom(...headers),
    clusters: fc.array(fc.integer({ min: 1, max: 2 ** 20 }), { minLength: 3, maxLength: 3 }),
    l1Size: fc.integer({ min: 0, max: 4096 }),
    tableClusters: fc.integer({ min: 1, max: 8 }),
    nbSnapshots: fc.integer({ min: 0, max: 100 }),
    dirty: fc.boolean(),
    corrupt: fc.boolean(),
  })
  .map(({ base, clusters, l1Size, tableClusters, nbSnapshots, dirty, corrupt }): { base: QcowHeader; next: QcowHeader } => {
    const clusterSize = 2 ** base.clusterBits;
    const bits = base.incompatibleFeatures & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
    const next: QcowHeader = {
      ...base,
      l1Size: Math.max(l1Size, base.l1Size),
      l1TableOffset: clusters[0]! * clusterSize,
      refcountTableOffset: clusters[1]! * clusterSize,
      refcountTableClusters: tableClusters,
      nbSnapshots,
      snapshotsOffset: nbSnapshots === 0 ? 0 : clusters[2]! * clusterSize,
      incompatibleFeatures: base.version === 3 ? bits | (dirty ? INCOMPAT_DIRTY : 0n) | (corrupt ? INCOMPAT_CORRUPT : 0n) : 0n,
    };
    return { base, next };
  });

describe('encodeHeaderFields', () => {
  it('a patch laid over the old header decodes to the new fields and the old rest', () => {
    fc.assert(
      fc.property(changed, fc.constantFrom(...GROUPS), ({ base, next }, group) => {
        if (base.version === 2 && group.includes('incompatibleFeatures')) return;
        // Snapshots without a table offset do not decode: the count alone changes only where there is a table.
        if (group.length === 1 && group[0] === 'nbSnapshots' && base.snapshotsOffset === 0 && next.nbSnapshots > 0) return;
        const bytes = encodeHeader(base);
        const patch = encodeHeaderFields(next, group);
        expect(patch.offset).toBe(Math.min(...group.map((f) => HEADER_FIELDS[f].at)));
        bytes.set(patch.bytes, patch.offset);
        const expected: QcowHeader = { ...base };
        for (const field of group) Object.assign(expected, { [field]: next[field as keyof QcowHeader] });
        expect(decodeHeader(bytes)).toEqual(expected);
      }),
      { seed: 0x2e11, numRuns: 600 },
    );
  });

  it('refuses fields that are not adjacent, and v3 fields of a v2 header', () => {
    const [v3, v2] = headers;
    expect(() => encodeHeaderFields(v3!, ['l1Size', 'nbSnapshots'])).toThrow(/not adjacent/);
    expect(() => encodeHeaderFields(v2!, ['incompatibleFeatures'])).toThrow(/not in a version 2 header/);
    expect(() => encodeHeaderFields(v3!, [])).toThrow(/no header fields/);
  });

  it('readHeaderField reads every field as stored', () => {
    for (const header of headers) {
      const bytes = encodeHeader(header);
      expect(readHeaderField(bytes, 'clusterBits')).toBe(header.clusterBits);
      expect(readHeaderField(bytes, 'refcountTableOffset')).toBe(BigInt(header.refcountTableOffset));
      expect(readHeaderField(bytes, 'nbSnapshots')).toBe(header.nbSnapshots);
      expect(readHeaderField(bytes, 'snapshotsOffset')).toBe(BigInt(header.snapshotsOffset));
      expect(readHeaderField(bytes, 'incompatibleFeatures')).toBe(header.version === 3 ? header.incompatibleFeatures : undefined);
    }
    expect(readHeaderField(new Uint8Array(23), 'clusterBits')).toBeUndefined();
  });
});

const extension: fc.Arbitrary<HeaderExtension> = fc.record({
  type: fc.integer({ min: 1, max: 0xffff_ffff }).filter((t) => t !== EXT_FEATURE_NAMES && t !== 0x23852875),
  data: fc.uint8Array({ maxLength: 40 }),
});

const featureName: fc.Arbitrary<FeatureName> = fc.record({
  kind: fc.constantFrom('incompatible', 'compatible', 'autoclear'),
  bit: fc.integer({ min: 0, max: 63 }),
  name: fc.string({ unit: fc.constantFrom('a', 'b', ' ', 'z', '1'), minLength: 1, maxLength: 46 }),
});

describe('encodeHeaderExtensions and encodeFeatureNameTable', () => {
  it('the extension area and feature names decode to what was encoded', () => {
    const header = headers[0]!;
    fc.assert(
      fc.property(fc.array(extension, { maxLength: 6 }), fc.array(featureName, { maxLength: 8 }), (extensions, names) => {
        const all = names.length > 0 ? [...extensions, { type: EXT_FEATURE_NAMES, data: encodeFeatureNameTable(names) }] : extensions;
        const area = encodeHeaderExtensions(all);
        const cluster0 = new Uint8Array(2 ** header.clusterBits);
        cluster0.set(encodeHeader(header));
        cluster0.set(area, header.headerLength);
        const decoded = decodeHeaderExtensions(cluster0, header);
        expect(decoded.all).toEqual(all);
        expect(decoded.end).toBe(header.headerLength + area.length);
        expect(decoded.featureNames).toEqual(names);
      }),
      { seed: 0x2e12, numRuns: 400 },
    );
  });

  it('cuts names to the 46 bytes an entry holds, and refuses the end marker as an extension', () => {
    const table = encodeFeatureNameTable([{ kind: 'compatible', bit: 0, name: 'x'.repeat(60) }]);
    expect(table.length).toBe(48);
    expect(table[0]).toBe(1);
    expect(table[47]).toBe('x'.charCodeAt(0));
    expect(() => encodeHeaderExtensions([{ type: 0, data: new Uint8Array(0) }])).toThrow(/type 0/);
  });
});
