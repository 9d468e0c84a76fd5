import {
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_EXTRA_DATA_COMPATIBLE,
  BITMAP_FLAG_IN_USE,
  BITMAP_TYPE_DIRTY_TRACKING,
  encodeString,
  MAX_BITMAP_NAME,
  MAX_BITMAPS,
  type BitmapEntry,
} from '@q/format';
import { DiskError } from '@q/raw';

/**
 * Whether a writer must keep a bitmap up to date (spec: "Dirty tracking bitmaps"): enabled ('auto'), consistent
 * (not 'in_use': an inconsistent one is left as it is, as QEMU leaves it), of the one type the spec defines, and
 * with no extra data we cannot keep (unknown extra data without the compatible flag means "do not use").
 */
export function tracksBitmap(entry: BitmapEntry): boolean {
  return (entry.flags & BITMAP_FLAG_AUTO) !== 0 && usableBitmap(entry);
}

/** Whether a bitmap's bits may be read or changed at all (QEMU refuses inconsistent and foreign ones). */
export function usableBitmap(entry: BitmapEntry): boolean {
  if ((entry.flags & BITMAP_FLAG_IN_USE) !== 0 || entry.type !== BITMAP_TYPE_DIRTY_TRACKING) return false;
  return entry.extraData.length === 0 || (entry.flags & BITMAP_FLAG_EXTRA_DATA_COMPATIBLE) !== 0;
}

/** Smallest and largest granularity QEMU takes for a persistent bitmap (qemu-img bitmap -g). */
export const MIN_BITMAP_GRANULARITY = 512;
export const MAX_BITMAP_GRANULARITY = 2 ** 31;

/**
 * What `qemu-img bitmap --add` checks before it makes a bitmap, with its messages: a v3 image, a name that is new,
 * not empty and at most 1023 bytes, a power-of-two granularity from 512 bytes to 2 GiB, room for one more.
 */
export function checkNewBitmap(existing: readonly BitmapEntry[], name: string, granularity: number, version: number): void {
  if (name === '') throw new DiskError('E_INVALID', 'Bitmap name cannot be empty');
  if (existing.some((entry) => entry.name === name)) throw new DiskError('E_INVALID', `Bitmap already exists: ${name}`);
  const power = Number.isSafeInteger(granularity) && granularity > 0 && (granularity & (granularity - 1)) === 0;
  if (!power || granularity < MIN_BITMAP_GRANULARITY || granularity > MAX_BITMAP_GRANULARITY) {
    throw new DiskError('E_INVALID', 'Granularity must be power of 2 and at least 512');
  }
  const prefix = `Can't make bitmap '${name}' persistent`;
  if (version < 3) throw new DiskError('E_UNSUPPORTED', `${prefix}: Cannot store dirty bitmaps in qcow2 v2 files`);
  if (encodeString(name).length > MAX_BITMAP_NAME) throw new DiskError('E_INVALID', `${prefix}: Name length exceeds maximum (${MAX_BITMAP_NAME} characters)`);
  if (existing.length >= MAX_BITMAPS) throw new DiskError('E_TOO_LARGE', `${prefix}: Maximum number of persistent bitmaps is already reached`);
}
