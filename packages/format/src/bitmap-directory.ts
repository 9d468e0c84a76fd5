import { DiskError } from '@q/raw';
import { alignUp, decodeString, readU64, view } from './bytes.js';
import { MAX_BITMAP_NAME } from './limits.js';

export const BITMAP_FLAG_IN_USE = 1 << 0;
export const BITMAP_FLAG_AUTO = 1 << 1;
export const BITMAP_FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;

/** One persistent dirty bitmap's directory entry (spec: "Bitmap directory"). */
export interface BitmapEntry {
  tableOffset: number;
  tableSize: number;
  flags: number;
  type: number;
  granularityBits: number;
  name: string;
  extraData: Uint8Array;
}

/** Decodes `count` bitmap directory entries, each bounded by the directory bytes. */
export function decodeBitmapDirectory(bytes: Uint8Array, count: number): BitmapEntry[] {
  const v = view(bytes);
  const entries: BitmapEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 24 > bytes.length) throw overrun(i);
    const nameSize = v.getUint16(at + 18);
    const extraSize = v.getUint32(at + 20);
    if (nameSize === 0 || nameSize > MAX_BITMAP_NAME) {
      throw new DiskError('E_CORRUPT', `bitmap directory entry ${i} has an invalid name length ${nameSize}`);
    }
    const nameAt = at + 24 + extraSize;
    const end = nameAt + nameSize;
    if (end > bytes.length) throw overrun(i);
    entries.push({
      tableOffset: readU64(v, at, 'bitmap table offset'),
      tableSize: v.getUint32(at + 8),
      flags: v.getUint32(at + 12),
      type: v.getUint8(at + 16),
      granularityBits: v.getUint8(at + 17),
      name: decodeString(bytes.subarray(nameAt, end)),
      extraData: bytes.slice(at + 24, nameAt),
    });
    at = alignUp(end, 8);
  }
  return entries;
}

function overrun(index: number): DiskError {
  return new DiskError('E_CORRUPT', `bitmap directory entry ${index} runs past the end of the bitmap directory`);
}
