import { describe, expect, it } from 'vitest';
import { memoryImage } from './memory-image.js';

/** WriteZeroesOptions.fast (NBD FAST_ZERO): metadata-only zeroing, or E_UNSUPPORTED with nothing changed. */
describe('Qcow2Image.writeZeroes with fast', () => {
  it('zeroes whole clusters through the zero flag', async () => {
    const image = await memoryImage(16 << 20);
    await image.write(new Uint8Array(256 << 10).fill(0x77), 0);
    await image.writeZeroes(64 << 10, 128 << 10, { fast: true });
    const back = new Uint8Array(256 << 10);
    await image.read(back, 0);
    expect(back.subarray(0, 64 << 10).every((b) => b === 0x77)).toBe(true);
    expect(back.subarray(64 << 10, 192 << 10).every((b) => b === 0)).toBe(true);
    expect(back.subarray(192 << 10).every((b) => b === 0x77)).toBe(true);
    await image.close();
  });

  it('refuses a range that would need zeros written (partial clusters), changing nothing', async () => {
    const image = await memoryImage(16 << 20);
    await image.write(new Uint8Array(128 << 10).fill(0x55), 0);
    await expect(image.writeZeroes(4096, 64 << 10, { fast: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    const back = new Uint8Array(128 << 10);
    await image.read(back, 0);
    expect(back.every((b) => b === 0x55)).toBe(true);
    // Without fast the same range is zeroed (partly by writing zeros).
    await image.writeZeroes(4096, 64 << 10);
    await image.read(back, 0);
    expect(back.subarray(4096, 4096 + (64 << 10)).every((b) => b === 0)).toBe(true);
    await image.close();
  });

  it('accepts a range ending at the end of a disk whose size is not a multiple of the cluster size', async () => {
    const image = await memoryImage((1 << 20) + 4096);
    await image.writeZeroes(1 << 20, 4096, { fast: true });
    await image.close();
  });

  it('accepts partial clusters whose rest reads as zeros: they become zero clusters (as qemu-io write -z -n)', async () => {
    const image = await memoryImage(16 << 20);
    await image.write(new Uint8Array(4096).fill(0x66), 1 << 20);
    await image.writeZeroes(4096, 100 << 10, { fast: true });
    const [first] = await image.map(0, 128 << 10);
    expect(first).toMatchObject({ kind: 'zero', length: 128 << 10 });
    // The rest of the cluster holds data: zeroing part of it would write.
    await expect(image.writeZeroes((1 << 20) + 8192, 4096, { fast: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await image.close();
  });

  it('refuses every range of a v2 image, as QEMU does (no zero flag, even where unallocating would do)', async () => {
    const image = await memoryImage(16 << 20, { version: 2 });
    await expect(image.writeZeroes(0, 64 << 10, { fast: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await image.writeZeroes(0, 64 << 10);
    await image.close();
  });
});
