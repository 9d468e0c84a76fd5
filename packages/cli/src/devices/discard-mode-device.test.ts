import { describe, expect, it } from 'vitest';
import { memoryImage, type Qcow2Image } from '@q/qcow2';
import { withDiscardModes, type DiscardModes } from './discard-mode-device.js';

const CLUSTER = 65536;

/** A fresh 4 MiB qcow2 image in memory with data in its first four clusters. */
async function imageWithData(): Promise<Qcow2Image> {
  const image = await memoryImage(4 << 20);
  await image.write(new Uint8Array(4 * CLUSTER).fill(0x5a), 0);
  return image;
}

/** The first status of the cluster at `offset`, as `qemu-img map` would sum it up. */
async function cluster(image: Qcow2Image, offset: number): Promise<{ kind: string; kept: boolean }> {
  const [status] = await image.blockStatus(offset, CLUSTER);
  return { kind: status!.kind, kept: status!.hostOffset !== undefined };
}

async function served(modes: DiscardModes): Promise<{ image: Qcow2Image; device: ReturnType<typeof withDiscardModes> }> {
  const image = await imageWithData();
  return { image, device: withDiscardModes(image, modes) };
}

describe('withDiscardModes', () => {
  it('discard=ignore: a trim succeeds and the data stays', async () => {
    const { image, device } = await served({ discard: 'ignore', detectZeroes: 'off' });
    await device.discard(0, CLUSTER);
    expect(await cluster(image, 0)).toEqual({ kind: 'data', kept: true });
    const back = new Uint8Array(16);
    await device.read(back, 0);
    expect(back.every((b) => b === 0x5a)).toBe(true);
  });

  it('discard=unmap: a trim reaches the image', async () => {
    const { image, device } = await served({ discard: 'unmap', detectZeroes: 'off' });
    await device.discard(0, CLUSTER);
    expect((await cluster(image, 0)).kind).not.toBe('data');
  });

  it('discard=ignore leaves writes of zeroes that may unmap alone (as qemu-nbd)', async () => {
    const { image, device } = await served({ discard: 'ignore', detectZeroes: 'off' });
    await device.writeZeroes(CLUSTER, CLUSTER, { unmap: true });
    await device.writeZeroes(2 * CLUSTER, CLUSTER, { unmap: false });
    expect(await cluster(image, CLUSTER)).toEqual({ kind: 'zero', kept: false });
    expect(await cluster(image, 2 * CLUSTER)).toEqual({ kind: 'zero', kept: true });
  });

  it('detect-zeroes=off writes zeros as data', async () => {
    const { image, device } = await served({ discard: 'unmap', detectZeroes: 'off' });
    await device.write(new Uint8Array(CLUSTER), 8 * CLUSTER);
    expect(await cluster(image, 8 * CLUSTER)).toEqual({ kind: 'data', kept: true });
  });

  it('detect-zeroes=on: a write of zeros becomes a zero cluster, keeping an allocated one', async () => {
    const { image, device } = await served({ discard: 'ignore', detectZeroes: 'on' });
    await device.write(new Uint8Array(CLUSTER), 0);
    await device.write(new Uint8Array(CLUSTER), 8 * CLUSTER);
    expect(await cluster(image, 0)).toEqual({ kind: 'zero', kept: true });
    expect(await cluster(image, 8 * CLUSTER)).toEqual({ kind: 'zero', kept: false });
    // A payload with one non-zero byte is data.
    const almost = new Uint8Array(CLUSTER);
    almost[CLUSTER - 1] = 1;
    await device.write(almost, 9 * CLUSTER);
    expect(await cluster(image, 9 * CLUSTER)).toEqual({ kind: 'data', kept: true });
  });

  it('detect-zeroes=unmap (with discard=unmap): a write of zeros releases an allocated cluster', async () => {
    const { image, device } = await served({ discard: 'unmap', detectZeroes: 'unmap' });
    await device.write(new Uint8Array(CLUSTER), CLUSTER);
    expect(await cluster(image, CLUSTER)).toEqual({ kind: 'zero', kept: false });
    const back = new Uint8Array(CLUSTER).fill(1);
    await device.read(back, CLUSTER);
    expect(back.every((b) => b === 0)).toBe(true);
  });
});
