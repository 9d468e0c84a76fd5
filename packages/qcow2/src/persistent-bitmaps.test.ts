import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BITMAP_FLAG_IN_USE } from '@q/format';
import { MemoryBlockFile } from '@q/raw';
import { readImageMetadata } from './image-metadata.js';
import { unclosable } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

// bitmaps.qcow2 (qemu-img, 1 MiB disk, 16 KiB clusters): 'tracking' (auto, 16 KiB granularity) and 'frozen'
// (disabled, 64 KiB). The qemu oracle runs are in tests/write (bitmaps.test.ts); these check the engine's steps.
const fixture = readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images', 'bitmaps.qcow2'));
const KiB = 1024;

function inMemory(): { file: MemoryBlockFile; open(writable: boolean): Promise<Qcow2Image> } {
  const file = new MemoryBlockFile(new Uint8Array(fixture), { name: 'bitmaps.qcow2' });
  const keepOpen = unclosable(file);
  return { file, open: (writable) => Qcow2Image.open({ ...keepOpen }, { name: 'bitmaps.qcow2', writable }) };
}

async function diskFlags(file: MemoryBlockFile): Promise<Record<string, number>> {
  const metadata = await readImageMetadata(file);
  return Object.fromEntries((metadata.bitmaps ?? []).map((entry) => [entry.name, entry.flags]));
}

describe('persistent bitmaps in the engine', () => {
  it('marks maintained bitmaps in_use before the first write, stores them clean at close', async () => {
    const { file, open } = inMemory();
    const image = await open(true);
    expect((await diskFlags(file))['tracking']! & BITMAP_FLAG_IN_USE).toBe(0);
    await image.write(new Uint8Array(100), 40 * KiB);
    expect((await diskFlags(file))['tracking']! & BITMAP_FLAG_IN_USE).toBe(BITMAP_FLAG_IN_USE);
    expect((await diskFlags(file))['frozen']! & BITMAP_FLAG_IN_USE).toBe(0);
    await image.writeZeroes(512 * KiB, 64 * KiB);
    expect(image.bitmaps()).toEqual([
      { name: 'tracking', granularity: 16 * KiB, flags: ['auto'] },
      { name: 'frozen', granularity: 64 * KiB, flags: [] },
    ]);
    const expected = [
      { offset: 0, length: 32 * KiB, dirty: false },
      { offset: 32 * KiB, length: 16 * KiB, dirty: true },
      { offset: 48 * KiB, length: 464 * KiB, dirty: false },
      { offset: 512 * KiB, length: 64 * KiB, dirty: true },
      { offset: 576 * KiB, length: 448 * KiB, dirty: false },
    ];
    expect(await image.dirtyExtents('tracking', 0, 1 << 20)).toEqual(expected);
    expect(await image.dirtyExtents('frozen', 0, 1 << 20)).toEqual([{ offset: 0, length: 1 << 20, dirty: false }]);
    await image.close();
    expect(await diskFlags(file)).toEqual({ tracking: 2, frozen: 0 });

    const reader = await open(false);
    expect(await reader.dirtyExtents('tracking', 0, 1 << 20)).toEqual(expected);
    await expect(reader.dirtyExtents('nothing', 0, 1)).rejects.toMatchObject({ code: 'E_NO_SUCH' });
    await reader.close();
  });

  it('leaves the image byte for byte as it was when a writable open writes nothing', async () => {
    const { file, open } = inMemory();
    const image = await open(true);
    await image.read(new Uint8Array(4096), 0);
    await image.close();
    expect(Buffer.compare(file.contents(), fixture)).toBe(0);
  });

  it('refuses to report an inconsistent bitmap and leaves it in_use', async () => {
    const { file, open } = inMemory();
    const image = await open(true);
    await image.write(new Uint8Array(1), 0);
    // A crash now: the maintained bitmap stays in_use on disk. Reopen what the file holds.
    const crashed = new MemoryBlockFile(file.contents().slice(), { name: 'crashed.qcow2' });
    const reopened = await Qcow2Image.open({ ...unclosable(crashed) }, { name: 'crashed.qcow2', writable: true });
    expect(reopened.bitmaps()[0]).toEqual({ name: 'tracking', granularity: 16 * KiB, flags: ['in-use', 'auto'] });
    await expect(reopened.dirtyExtents('tracking', 0, 1)).rejects.toMatchObject({ code: 'E_INVALID' });
    await reopened.write(new Uint8Array(1), 0);
    await reopened.close();
    expect((await diskFlags(crashed))['tracking']! & BITMAP_FLAG_IN_USE).toBe(BITMAP_FLAG_IN_USE);
    await image.close();
  });

  it('marks bitmaps in_use again when a write follows a bitmap command that stored them', async () => {
    const { file, open } = inMemory();
    const image = await open(true);
    await image.write(new Uint8Array(1), 0);
    await image.addBitmap('added', { granularity: 64 * KiB });
    // The command stored every bitmap: consistent on disk, with the first write's bit.
    expect(await diskFlags(file)).toEqual({ tracking: 2, frozen: 0, added: 2 });
    await image.write(new Uint8Array(1), 900 * KiB);
    expect(await diskFlags(file)).toEqual({ tracking: 3, frozen: 0, added: 3 });
    await image.close();
    const reader = await open(false);
    expect((await reader.dirtyExtents('added', 0, 1 << 20)).filter((e) => e.dirty)).toEqual([{ offset: 896 * KiB, length: 64 * KiB, dirty: true }]);
    expect((await reader.dirtyExtents('tracking', 0, 1 << 20)).filter((e) => e.dirty).map((e) => e.offset)).toEqual([0, 896 * KiB]);
    await reader.close();
  });

  it('refuses bitmap commands with typed errors and QEMU messages', async () => {
    const { open } = inMemory();
    const image = await open(true);
    await expect(image.addBitmap('tracking', { granularity: 65536 })).rejects.toMatchObject({ code: 'E_INVALID', message: 'Bitmap already exists: tracking' });
    await expect(image.addBitmap('x', { granularity: 1000 })).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(image.clearBitmap('none')).rejects.toMatchObject({ code: 'E_NO_SUCH' });
    await expect(image.applySnapshot('x')).rejects.toMatchObject({ code: 'E_NO_SUCH' });
    await image.close();
  });
});
