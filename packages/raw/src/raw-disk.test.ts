import { describe, expect, it } from 'vitest';
import { MemoryBlockFile } from './memory-file.js';
import { RawDisk } from './raw-disk.js';

describe('RawDisk', () => {
  it('maps guest offsets straight to file offsets', async () => {
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    const disk = await RawDisk.open(new MemoryBlockFile(bytes, { name: 'disk.raw' }));
    expect(disk.size).toBe(4096);
    const dst = new Uint8Array(100);
    await disk.read(dst, 1000);
    expect(dst).toEqual(bytes.subarray(1000, 1100));
    expect(await disk.blockStatus(0, 10000)).toEqual([
      { offset: 0, length: 4096, kind: 'data', hostOffset: 0, hostFile: 'disk.raw' },
    ]);
  });

  it('rejects reads outside the device', async () => {
    const disk = await RawDisk.open(new MemoryBlockFile(new Uint8Array(512)));
    await expect(disk.read(new Uint8Array(2), 511)).rejects.toMatchObject({ code: 'E_INVALID' });
  });
});
