import { describe, expect, it } from 'vitest';
import { bitmapDirectoryEntrySize, decodeBitmapDirectory, encodeBitmapDirectory, BITMAP_FLAG_AUTO, BITMAP_TYPE_DIRTY_TRACKING } from './bitmap-directory.js';
import { decodeBitmapTableEntry, encodeBitmapTable, type BitmapTableEntry } from './bitmap-table-entry.js';
import { decodeHeader } from './header.js';
import { decodeHeaderExtensions, encodeBitmapsExtension } from './header-extensions.js';
import { EXT_BITMAPS } from './limits.js';
import { fixtureBytes } from './test-fixtures.js';

// bitmaps.qcow2 was made by `qemu-img bitmap --add` (tools/fixtures/make-fixtures.sh): the encoders must give
// back QEMU's bytes exactly.
const image = fixtureBytes('bitmaps.qcow2');
const extensions = decodeHeaderExtensions(image, decodeHeader(image));
const ext = extensions.bitmaps!;
const directoryBytes = image.subarray(ext.directoryOffset, ext.directoryOffset + ext.directorySize);

describe('bitmap codecs on an image qemu-img made', () => {
  it('encodes the bitmaps extension to the bytes QEMU stored', () => {
    const stored = extensions.all.find((extension) => extension.type === EXT_BITMAPS)!.data;
    expect(encodeBitmapsExtension(ext)).toEqual(stored);
  });

  it('encodes the directory to the bytes QEMU stored, padding every entry (the last included)', () => {
    const entries = decodeBitmapDirectory(directoryBytes, ext.nbBitmaps);
    expect(entries.map((entry) => [entry.name, entry.flags, entry.granularityBits])).toEqual([
      ['tracking', BITMAP_FLAG_AUTO, 14],
      ['frozen', 0, 16],
    ]);
    expect(encodeBitmapDirectory(entries)).toEqual(directoryBytes);
    expect(entries.reduce((sum, entry) => sum + bitmapDirectoryEntrySize(entry), 0)).toBe(ext.directorySize);
  });

  it('decodes the tables of fresh bitmaps as all zeros and encodes them back', () => {
    for (const entry of decodeBitmapDirectory(directoryBytes, ext.nbBitmaps)) {
      const table = image.slice(entry.tableOffset, entry.tableOffset + entry.tableSize * 8);
      const decoded = Array.from({ length: entry.tableSize }, (_, i) => decodeBitmapTableEntry(table, i, 16384)!);
      expect(decoded.every((e) => e.kind === 'zeros')).toBe(true);
      expect(encodeBitmapTable(decoded)).toEqual(table);
    }
  });
});

describe('bitmap table entries', () => {
  it('round-trip zeros, ones and data clusters above 4 GiB', () => {
    const entries: BitmapTableEntry[] = [{ kind: 'zeros' }, { kind: 'ones' }, { kind: 'data', offset: 0x1_2345_0000 }];
    const table = encodeBitmapTable(entries);
    expect(entries.map((_, i) => decodeBitmapTableEntry(table, i, 65536))).toEqual(entries);
  });

  it('refuses what QEMU refuses: reserved bits, ones with a cluster, unaligned clusters', () => {
    const table = new Uint8Array(24);
    const v = new DataView(table.buffer);
    v.setUint32(4, 0x2); // reserved bit 1
    v.setUint32(12, 0x10001); // all ones with a cluster offset
    v.setUint32(20, 0x10200); // 512-aligned, not 64 KiB aligned
    expect([0, 1, 2].map((i) => decodeBitmapTableEntry(table, i, 65536))).toEqual([undefined, undefined, undefined]);
  });
});

describe('encodeBitmapDirectory', () => {
  const entry = { tableOffset: 0x50000, tableSize: 1, flags: BITMAP_FLAG_AUTO, type: BITMAP_TYPE_DIRTY_TRACKING, granularityBits: 16, extraData: new Uint8Array(0) };

  it('round-trips entries with extra data and multibyte names', () => {
    const entries = [
      { ...entry, name: 'bitmap-é', extraData: new Uint8Array([1, 2, 3]) },
      { ...entry, name: 'b', tableOffset: 2 ** 40 },
    ];
    const bytes = encodeBitmapDirectory(entries);
    expect(bytes.length % 8).toBe(0);
    expect(decodeBitmapDirectory(bytes, 2)).toEqual(entries);
  });

  it('refuses empty and over-long names with a typed error', () => {
    expect(() => encodeBitmapDirectory([{ ...entry, name: '' }])).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
    expect(() => encodeBitmapDirectory([{ ...entry, name: 'x'.repeat(1024) }])).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });
});
