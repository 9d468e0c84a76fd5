import { Qcow2Image, type BitmapInfo } from '@q/qcow2';
import type { BlockDevice } from '@q/raw';
import { openImage } from './open-source.js';
import { ExitError } from './usage-error.js';

/**
 * `qcow convert --bitmaps`: the source's persistent bitmaps, copied into the new qcow2 image after its data (same
 * names, granularities, enabled or not, and bits), as qemu-img 7.2 does. An inconsistent (in_use) bitmap stops the
 * conversion unless `--skip-broken-bitmaps`, which skips it with a warning. Checked before anything is written:
 * qemu-img creates the target first and then refuses, leaving it behind.
 */
export function planBitmapCopy(source: BlockDevice, outputFormat: string, skipBroken: boolean, warn: (line: string) => void): BitmapInfo[] {
  if (outputFormat !== 'qcow2') throw new ExitError(`Format driver '${outputFormat}' does not support bitmaps`, 1);
  if (!(source instanceof Qcow2Image)) throw new ExitError('Source lacks bitmap support', 1);
  const bitmaps = source.bitmaps();
  // qemu-img looks at them last first: the first broken one it names, and its warnings, come in that order.
  for (const bitmap of [...bitmaps].reverse()) {
    if (!bitmap.flags.includes('in-use')) continue;
    if (!skipBroken) {
      throw new ExitError(`Cannot copy inconsistent bitmap '${bitmap.name}'\nTry --skip-broken-bitmaps, or use 'qcow bitmap --remove' to delete it`, 1);
    }
    warn(`Skipping inconsistent bitmap '${bitmap.name}'`);
  }
  return bitmaps.filter((bitmap) => !bitmap.flags.includes('in-use'));
}

/** Adds each planned bitmap to the converted image at `destination` and sets the source's bits in it. */
export async function copyBitmaps(source: Qcow2Image, bitmaps: readonly BitmapInfo[], destination: string): Promise<void> {
  if (bitmaps.length === 0) return;
  const target = await openImage(destination, { format: 'qcow2', writable: true, ignoreBacking: true });
  try {
    if (!(target instanceof Qcow2Image)) throw new ExitError(`'${destination}' is not a qcow2 image`, 1);
    for (const bitmap of bitmaps) {
      await target.addBitmap(bitmap.name, { granularity: bitmap.granularity, disabled: !bitmap.flags.includes('auto') });
      await target.mergeBitmap(bitmap.name, await source.bitmapBits(bitmap.name));
    }
  } finally {
    await target.close();
  }
}
