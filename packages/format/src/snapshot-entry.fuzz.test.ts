import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeader } from './header.js';
import {
  decodeSnapshotEntryHead,
  decodeSnapshotExtraData,
  encodeSnapshotEntry,
  SNAPSHOT_ENTRY_FIXED_BYTES,
  writeSnapshotExtraData,
  type SnapshotExtraFields,
  type StoredSnapshotEntry,
} from './snapshot-entry.js';
import { measureSnapshotTable } from './snapshot-table.js';
import { fixtureBytes } from './test-fixtures.js';

// Round trips of the stored snapshot entry layout: every field, 64-bit ones included, survives encode/decode
// exactly (qcow check rewrites entries whatever they hold), and the extra data keeps its size and unknown bytes.

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

const storedEntry: fc.Arbitrary<StoredSnapshotEntry> = fc.record({
  l1TableOffset: u64,
  l1Size: u32,
  dateSeconds: u32,
  dateNanoseconds: u32,
  vmClockNanoseconds: u64,
  vmStateSize32: u32,
  extraData: fc.uint8Array({ maxLength: 80 }),
  idBytes: fc.uint8Array({ maxLength: 12 }),
  nameBytes: fc.uint8Array({ maxLength: 40 }),
});

describe('stored snapshot entries', () => {
  it('decodeSnapshotEntryHead reads back what encodeSnapshotEntry wrote, and the parts follow in order', () => {
    fc.assert(
      fc.property(storedEntry, (entry) => {
        const bytes = encodeSnapshotEntry(entry);
        const { extraData, idBytes, nameBytes, ...fixed } = entry;
        const head = decodeSnapshotEntryHead(bytes);
        expect(head).toEqual({ ...fixed, idLength: idBytes.length, nameLength: nameBytes.length, extraDataSize: extraData.length });
        let at = SNAPSHOT_ENTRY_FIXED_BYTES;
        for (const part of [extraData, idBytes, nameBytes]) {
          expect(bytes.subarray(at, at + part.length)).toEqual(part);
          at += part.length;
        }
        expect(bytes.length).toBe(at);
      }),
      { seed: 0x2e21, numRuns: 1000 },
    );
  });

  it('extra data: known fields round-trip where they fit, and nothing else changes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.record({ vmStateSize: u64, diskSize: u64, icount: u64 }, { requiredKeys: [] }), (original, fields) => {
        const extra = original.slice();
        writeSnapshotExtraData(extra, fields);
        const decoded = decodeSnapshotExtraData(extra);
        const before = decodeSnapshotExtraData(original);
        for (const [key, at] of [['vmStateSize', 0], ['diskSize', 8], ['icount', 16]] as const) {
          const expected: SnapshotExtraFields[typeof key] = extra.length >= at + 8 ? (fields[key] ?? before[key]) : undefined;
          expect(decoded[key]).toBe(expected);
        }
        expect(extra.subarray(24)).toEqual(original.subarray(24));
      }),
      { seed: 0x2e22, numRuns: 1000 },
    );
  });

  it('re-encodes the entries of a table qemu-img wrote to the same bytes', () => {
    const bytes = fixtureBytes('snapshots.qcow2');
    const header = decodeHeader(bytes);
    const table = bytes.subarray(header.snapshotsOffset);
    const length = measureSnapshotTable(table, header.nbSnapshots)!;
    let at = 0;
    for (let i = 0; i < header.nbSnapshots; i++) {
      const head = decodeSnapshotEntryHead(table, at);
      const extraAt = at + SNAPSHOT_ENTRY_FIXED_BYTES;
      const idAt = extraAt + head.extraDataSize;
      const nameAt = idAt + head.idLength;
      const end = nameAt + head.nameLength;
      const entry = encodeSnapshotEntry({
        ...head,
        extraData: table.slice(extraAt, idAt),
        idBytes: table.slice(idAt, nameAt),
        nameBytes: table.slice(nameAt, end),
      });
      expect(entry).toEqual(table.subarray(at, end));
      at = Math.ceil(end / 8) * 8;
    }
    expect(at).toBe(length);
  });
});
