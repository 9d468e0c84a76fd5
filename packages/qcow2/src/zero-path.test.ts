import { checkImage } from '@q/check';
import { MemoryBlockFile } from '@q/raw';
import { describe, expect, it } from 'vitest';
import { defaultCreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { unclosable } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

const CLUSTER = 65536;
const MiB = 1 << 20;
const GiB = 1 << 30;

async function freshImage(size: number): Promise<{ image: Qcow2Image; file: MemoryBlockFile }> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'zero.qcow2', deallocate: true });
  await createQcow2(unclosable(file), defaultCreateOptions(size));
  return { image: await Qcow2Image.open(file, { writable: true }), file };
}

/** Every byte of `[offset, offset + length)` reads as one value: the write's pattern or the zeros (never a mix). */
async function readsAsOne(image: Qcow2Image, offset: number, length: number): Promise<number> {
  const back = new Uint8Array(length);
  await image.read(back, offset);
  const value = back[0]!;
  expect(back.every((byte) => byte === value), `bytes at ${offset} are torn`).toBe(true);
  return value;
}

/**
 * Zero writes of long ranges claim a batch of tables at once and build the missing ones (entry-range-change.ts).
 * Writes inside the range wait for the batch's claim, writes elsewhere in its tables for the metadata lock: none of
 * them may make a second table for an L1 entry, lose its data to a table put in place after it, or be torn.
 */
describe('ZeroPath with writes in flight', () => {
  it('zeroing 8 GiB with writes inside and beside the range leaves each write whole and the image clean', async () => {
    const { image, file } = await freshImage(8 * GiB);
    await image.write(new Uint8Array(CLUSTER).fill(0xee), 3 * GiB);
    // Both ends inside an L2 table (each covers 512 MiB).
    const zeroFrom = GiB + 256 * MiB;
    const zeroTo = 7 * GiB - 256 * MiB;
    const writes: Array<{ offset: number; length: number; pattern: number; inside: boolean }> = [];
    for (let i = 0; i < 48; i++) {
      // Spread over every table; half land in the zeroed range, half outside it but in its first and last tables.
      const inside = i % 2 === 0;
      const base = inside ? zeroFrom + Math.floor((i * (zeroTo - zeroFrom)) / 48 / CLUSTER) * CLUSTER : (i % 4 === 1 ? GiB : zeroTo + 8 * MiB) + i * 40 * CLUSTER;
      writes.push({ offset: base + (i % 3) * 4096, length: i % 5 === 0 ? 3 * CLUSTER : 8192, pattern: i + 1, inside });
    }
    const zero = image.writeZeroes(zeroFrom, zeroTo - zeroFrom, { unmap: true });
    const pending = writes.map(async (w, i) => {
      for (let step = 0; step < i % 7; step++) await null;
      await image.write(new Uint8Array(w.length).fill(w.pattern), w.offset);
    });
    await Promise.all([zero, ...pending]);
    for (const w of writes) {
      const value = await readsAsOne(image, w.offset, w.length);
      if (w.inside) expect([0, w.pattern]).toContain(value);
      else expect(value).toBe(w.pattern);
    }
    expect(await readsAsOne(image, 3 * GiB, CLUSTER)).toBe(0);
    await image.close();
    const report = await checkImage(new MemoryBlockFile(file.contents().slice(), { name: 'zero.qcow2', writable: false }));
    expect(report.messages).toEqual([]);
    expect({ corruptions: report.corruptions, leaks: report.leaks }).toEqual({ corruptions: 0, leaks: 0 });
  });
});
