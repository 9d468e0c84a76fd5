import { describe, expect, it } from 'vitest';
import { decodeHeader } from './header.js';
import { decodeSnapshotTable, encodeSnapshotTable, measureSnapshotTable } from './snapshot-table.js';
import { decodeBitmapDirectory, BITMAP_FLAG_AUTO } from './bitmap-directory.js';
import { decodeHeaderExtensions } from './header-extensions.js';
import { fixtureBytes } from './test-fixtures.js';

describe('snapshot table written by qemu-img', () => {
  const bytes = fixtureBytes('snapshots.qcow2');
  const header = decodeHeader(bytes);
  const table = bytes.subarray(header.snapshotsOffset);

  it('decodes ids, names, sizes and v3 extra data', () => {
    const entries = decodeSnapshotTable(table, header.nbSnapshots);
    expect(entries.map((e) => [e.id, e.name])).toEqual([['1', 'first'], ['2', 'second']]);
    for (const entry of entries) {
      expect(entry.diskSize).toBe(1024 * 1024);
      expect(entry.l1Size).toBe(1);
      expect(entry.extraData.length).toBeGreaterThanOrEqual(16);
      expect(entry.vmStateSize).toBe(0);
      expect(entry.dateSeconds).toBeGreaterThan(1_700_000_000);
    }
  });

  it('re-encodes to the same bytes', () => {
    const length = measureSnapshotTable(table, header.nbSnapshots)!;
    const entries = decodeSnapshotTable(table, header.nbSnapshots);
    expect(encodeSnapshotTable(entries)).toEqual(table.subarray(0, length));
  });

  it('refuses an entry running past the table', () => {
    const length = measureSnapshotTable(table, header.nbSnapshots)!;
    expect(measureSnapshotTable(table.subarray(0, length - 8), header.nbSnapshots)).toBeUndefined();
    expect(() => decodeSnapshotTable(table.subarray(0, length - 8), header.nbSnapshots)).toThrow(/runs past/);
  });
});

describe('bitmap directory written by qemu-img', () => {
  it('decodes names, granularity and flags', () => {
    const bytes = fixtureBytes('bitmaps.qcow2');
    const ext = decodeHeaderExtensions(bytes, decodeHeader(bytes)).bitmaps!;
    const entries = decodeBitmapDirectory(bytes.subarray(ext.directoryOffset, ext.directoryOffset + ext.directorySize), ext.nbBitmaps);
    expect(entries.map((e) => [e.name, 2 ** e.granularityBits, (e.flags & BITMAP_FLAG_AUTO) !== 0])).toEqual([
      ['tracking', 16384, true],
      ['frozen', 65536, false],
    ]);
  });
});
