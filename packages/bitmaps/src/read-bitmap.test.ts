import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeBitmapDirectory, decodeHeader, decodeHeaderExtensions, encodeBitmapTable } from '@q/format';
import { MemoryBlockFile } from '@q/raw';
import { describe, expect, it } from 'vitest';
import { bitmapDataCluster, bitmapTableSize, loadBitmapCluster } from './bitmap-clusters.js';
import { DirtyBitmap } from './dirty-bitmap.js';
import { readBitmap } from './read-bitmap.js';

// bitmaps.qcow2: 1 MiB disk, 16 KiB clusters, made by `qemu-img bitmap --add` (tools/fixtures/make-fixtures.sh).
const image = new Uint8Array(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images', 'bitmaps.qcow2')));
const ext = decodeHeaderExtensions(image, decodeHeader(image)).bitmaps!;
const entries = decodeBitmapDirectory(image.subarray(ext.directoryOffset, ext.directoryOffset + ext.directorySize), ext.nbBitmaps);

describe('readBitmap', () => {
  it('loads the fresh bitmaps qemu-img made as clean', async () => {
    const file = new MemoryBlockFile(image.slice(), { name: 'bitmaps.qcow2' });
    for (const entry of entries) {
      const { bitmap, dataClusters } = await readBitmap(file, entry, 1 << 20, 16384);
      expect(bitmap.granularity).toBe(2 ** entry.granularityBits);
      expect(bitmap.empty).toBe(true);
      expect(dataClusters).toEqual([]);
    }
  });

  it('reads data clusters and all-ones entries, keeping tail bits clear', async () => {
    const clusterSize = 512;
    const diskSize = 5000 * 512 + 1; // 5001 bits at 512: 626 bytes, two data clusters
    const file = new MemoryBlockFile(new Uint8Array(4 * clusterSize), { name: 'x' });
    await file.write(Uint8Array.of(0b101), 2 * clusterSize);
    await file.write(encodeBitmapTable([{ kind: 'data', offset: 2 * clusterSize }, { kind: 'ones' }]), clusterSize);
    const entry = { ...entries[0]!, tableOffset: clusterSize, tableSize: 2, granularityBits: 9 };
    const { bitmap, dataClusters } = await readBitmap(file, entry, diskSize, clusterSize);
    expect(dataClusters).toEqual([1024]);
    expect(bitmap.extents(0, 4 * 512).map((e) => e.dirty)).toEqual([true, false, true, false]);
    expect(bitmap.isDirty(diskSize - 1)).toBe(true);
    expect(bitmap.bytes.at(-1)).toBe(0b1); // bit 5000 only: 5001 bits leave 7 tail bits
  });

  it('refuses a table whose size does not fit the disk, or a bad entry, with E_CORRUPT', async () => {
    const file = new MemoryBlockFile(image.slice(), { name: 'bitmaps.qcow2' });
    await expect(readBitmap(file, entries[0]!, 2 ** 32, 16384)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    const broken = image.slice();
    broken[entries[0]!.tableOffset + 7] = 0x02; // reserved bit 1
    await expect(readBitmap(new MemoryBlockFile(broken, { name: 'b' }), entries[0]!, 1 << 20, 16384)).rejects.toMatchObject({ code: 'E_CORRUPT' });
  });
});

describe('bitmap data clusters', () => {
  it('gives undefined for clean clusters and padded bytes for the short last one', () => {
    const bitmap = new DirtyBitmap(3000 * 512, 512); // 375 bytes: clusters of 256 bytes -> 2
    expect(bitmapTableSize(bitmap.size, 512, 256)).toBe(2);
    bitmap.setRange(2999 * 512, 1);
    expect(bitmapDataCluster(bitmap, 0, 256)).toBeUndefined();
    const last = bitmapDataCluster(bitmap, 1, 256)!;
    expect(last.length).toBe(256);
    expect(last[374 - 256]).toBe(0x80);
    const copy = new DirtyBitmap(bitmap.size, 512);
    loadBitmapCluster(copy, 1, 256, last);
    expect(copy.bytes).toEqual(bitmap.bytes);
  });
});
