import { describe, expect, it } from 'vitest';
import type { FileRun } from './block-file.js';
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

describe('RawDisk on a file that can deallocate', () => {
  const filled = (): MemoryBlockFile => new MemoryBlockFile(new Uint8Array(64 * 1024).fill(0xa5), { name: 'disk.raw', deallocate: true });

  it('discard and write-zeroes with unmap punch holes (zeros read back); without unmap zeros are written', async () => {
    const file = filled();
    const disk = await RawDisk.open(file);
    const punched: Array<[number, number]> = [];
    const punch = file.deallocate.bind(file);
    file.deallocate = async (offset, length) => (punched.push([offset, length]), punch(offset, length));
    await disk.discard(4096, 1000);
    await disk.writeZeroes(16384, 8192, { unmap: true, fast: true });
    await disk.writeZeroes(32768, 4096);
    expect(punched).toEqual([
      [4096, 1000],
      [16384, 8192],
    ]);
    const bytes = file.contents();
    for (const [from, to] of [[4096, 5096], [16384, 24576], [32768, 36864]] as const) {
      expect(bytes.subarray(from, to).every((b) => b === 0)).toBe(true);
      expect(bytes[from - 1]).toBe(0xa5);
      expect(bytes[to]).toBe(0xa5);
    }
    await expect(disk.writeZeroes(0, 512, { fast: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    expect(bytes[0]).toBe(0xa5);
  });

  it('leaves the bytes alone on discard where the file cannot deallocate', async () => {
    const file = new MemoryBlockFile(new Uint8Array(8192).fill(0x11));
    const disk = await RawDisk.open(file);
    await disk.discard(0, 8192);
    expect(file.contents().every((b) => b === 0x11)).toBe(true);
    await expect(disk.writeZeroes(0, 4096, { unmap: true, fast: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await disk.writeZeroes(0, 4096, { unmap: true });
    expect(file.contents().subarray(0, 4096).every((b) => b === 0)).toBe(true);
  });

  it('reports holes of the file as zero extents with their offsets (qemu-img map of a sparse raw file)', async () => {
    const file = Object.assign(filled(), {
      runAt: async (offset: number, length: number): Promise<FileRun> => {
        // A hole at [16 KiB, 40 KiB), data elsewhere.
        if (offset < 16384) return { data: true, length: Math.min(length, 16384 - offset) };
        if (offset < 40960) return { data: false, length: Math.min(length, 40960 - offset) };
        return { data: true, length: Math.min(length, 65536 - offset) };
      },
    });
    const disk = await RawDisk.open(file);
    expect(await disk.blockStatus(8192, 40960)).toEqual([
      { offset: 8192, length: 8192, kind: 'data', hostOffset: 8192, hostFile: 'disk.raw' },
      { offset: 16384, length: 24576, kind: 'zero', hostOffset: 16384, hostFile: 'disk.raw', hole: true },
      { offset: 40960, length: 8192, kind: 'data', hostOffset: 40960, hostFile: 'disk.raw' },
    ]);
  });
});
