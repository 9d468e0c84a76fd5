import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk } from '@q/raw';
import { ConcatenatedSource } from './concatenated-source.js';

/** A raw disk of `size` bytes, every byte `fill`. */
async function disk(size: number, fill: number): Promise<RawDisk> {
  return RawDisk.open(new MemoryBlockFile(new Uint8Array(size).fill(fill)));
}

describe('ConcatenatedSource', () => {
  it('reads across the seams: each part where the one before it ends', async () => {
    const whole = new ConcatenatedSource([await disk(1024, 1), await disk(512, 2), await disk(2048, 3)]);
    expect(whole.size).toBe(3584);
    const bytes = new Uint8Array(1024);
    await whole.read(bytes, 768);
    expect([bytes[0], bytes[255], bytes[256], bytes[767], bytes[768], bytes[1023]]).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it("gives each part's block status moved to where the part lies, within the range asked", async () => {
    const whole = new ConcatenatedSource([await disk(1024, 1), await disk(512, 2)]);
    const status = await whole.blockStatus(512, 1024);
    expect(status.map(({ offset, length, kind }) => ({ offset, length, kind }))).toEqual([
      { offset: 512, length: 512, kind: 'data' },
      { offset: 1024, length: 512, kind: 'data' },
    ]);
    expect(await whole.blockStatus(4096, 10)).toEqual([]);
  });

  it('is read-only and closes every part', async () => {
    const parts = [await disk(512, 1), await disk(512, 2)];
    const whole = new ConcatenatedSource(parts);
    await expect(whole.write()).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    await whole.close();
    await expect(parts[1]!.read(new Uint8Array(1), 0)).rejects.toThrow();
  });
});
