import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk } from '@q/raw';
import { DirtyMarkingDevice } from './dirty-marking-device.js';

describe('DirtyMarkingDevice', () => {
  it('marks each change before it runs, in every bitmap, and leaves reads alone', async () => {
    const marks: string[] = [];
    const inner = await RawDisk.open(new MemoryBlockFile(new Uint8Array(1 << 16), { writable: true }));
    const device = new DirtyMarkingDevice(inner, [
      { markDirty: (offset, length) => marks.push(`a ${offset}+${length}`) },
      { markDirty: (offset, length) => marks.push(`b ${offset}+${length}`) },
    ]);
    await device.write(new Uint8Array(512).fill(7), 4096);
    await device.writeZeroes(8192, 1024);
    await device.discard(0, 512);
    await device.read(new Uint8Array(512), 4096);
    expect(marks).toEqual(['a 4096+512', 'b 4096+512', 'a 8192+1024', 'b 8192+1024', 'a 0+512', 'b 0+512']);
  });

  it('keeps the mark of a change that fails: a backup copies a little more, never less', async () => {
    const marks: number[] = [];
    const inner = await RawDisk.open(new MemoryBlockFile(new Uint8Array(4096), { writable: true }));
    const device = new DirtyMarkingDevice(inner, [{ markDirty: (offset) => marks.push(offset) }]);
    await expect(device.write(new Uint8Array(512), 4000)).rejects.toThrow();
    expect(marks).toEqual([4000]);
  });
});
