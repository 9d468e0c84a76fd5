import { DiskError } from '@q/raw';
import type { DirtyBitmap } from './dirty-bitmap.js';

/**
 * Entries a bitmap's table needs: one per cluster of bitmap data (spec: "Bitmap table"), the data being one bit
 * per granule of the disk. QEMU checks a stored table's size against this and refuses a bitmap that disagrees.
 */
export function bitmapTableSize(diskSize: number, granularity: number, clusterSize: number): number {
  return Math.ceil(Math.ceil(Math.ceil(diskSize / granularity) / 8) / clusterSize);
}

/**
 * The bytes of data cluster `index` as they are stored (the last one padded with zeros to a whole cluster), or
 * undefined when every bit in it is clear: such a cluster is stored as a table entry of 0 and costs no cluster,
 * as QEMU stores it. A cluster of all ones is written as data, as QEMU does, though readers accept both forms.
 */
export function bitmapDataCluster(bitmap: DirtyBitmap, index: number, clusterSize: number): Uint8Array | undefined {
  const start = index * clusterSize;
  if (start >= bitmap.bytes.length) throw new DiskError('E_INVALID', `bitmap data cluster ${index} is past the bitmap's data`);
  const part = bitmap.bytes.subarray(start, Math.min(bitmap.bytes.length, start + clusterSize));
  if (part.every((byte) => byte === 0)) return undefined;
  if (part.length === clusterSize) return part;
  const padded = new Uint8Array(clusterSize);
  padded.set(part);
  return padded;
}

/**
 * Puts the stored contents of data cluster `index` into the bitmap: its bytes, or what a table entry without a
 * cluster says ('zeros' or 'ones'). Bits past the disk's end stay clear whatever the cluster holds: the spec says
 * they must be zero, and a set one would make the bitmap claim bytes the disk does not have.
 */
export function loadBitmapCluster(bitmap: DirtyBitmap, index: number, clusterSize: number, content: Uint8Array | 'zeros' | 'ones'): void {
  const start = index * clusterSize;
  const end = Math.min(bitmap.bytes.length, start + clusterSize);
  if (start >= end) throw new DiskError('E_INVALID', `bitmap data cluster ${index} is past the bitmap's data`);
  if (content === 'zeros') bitmap.bytes.fill(0, start, end);
  else if (content === 'ones') bitmap.bytes.fill(0xff, start, end);
  else bitmap.bytes.set(content.subarray(0, end - start), start);
  const tailBits = bitmap.bits % 8;
  if (end === bitmap.bytes.length && tailBits !== 0) bitmap.bytes[end - 1]! &= (1 << tailBits) - 1;
}
