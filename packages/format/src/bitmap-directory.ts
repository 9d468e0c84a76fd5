import { DiskError } from '@q/raw';
import { alignUp, decodeString, encodeString, readU64, view, writeU64 } from './bytes.js';
import { MAX_BITMAP_NAME } from './limits.js';

export const BITMAP_FLAG_IN_USE = 1 << 0;
export const BITMAP_FLAG_AUTO = 1 << 1;
export const BITMAP_FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;
/** The only bitmap type the spec defines: a dirty tracking bitmap. */
export const BITMAP_TYPE_DIRTY_TRACKING = 1;
/** Bytes of an entry before its extra data and name. */
const ENTRY_HEAD_BYTES = 24;

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
    if (at + ENTRY_HEAD_BYTES > bytes.length) throw overrun(i);
    const nameSize = v.getUint16(at + 18);
    const extraSize = v.getUint32(at + 20);
    if (nameSize === 0 || nameSize > MAX_BITMAP_NAME) {
      throw new DiskError('E_CORRUPT', `bitmap directory entry ${i} has an invalid name length ${nameSize}`);
    }
    const nameAt = at + ENTRY_HEAD_BYTES + extraSize;
    const end = nameAt + nameSize;
    if (end > bytes.length) throw overrun(i);
    entries.push({
      tableOffset: readU64(v, at, 'bitmap table offset'),
      tableSize: v.getUint32(at + 8),
      flags: v.getUint32(at + 12),
      type: v.getUint8(at + 16),
      granularityBits: v.getUint8(at + 17),
      name: decodeString(bytes.subarray(nameAt, end)),
      extraData: bytes.slice(at + ENTRY_HEAD_BYTES, nameAt),
    });
    at = alignUp(end, 8);
  }
  return entries;
}

function overrun(index: number): DiskError {
  return new DiskError('E_CORRUPT', `bitmap directory entry ${index} runs past the end of the bitmap directory`);
}

/**
 * Bytes one entry takes in the directory: QEMU pads every entry to 8 bytes, the last one included, and counts the
 * padding in bitmap_directory_size (spec: "Bitmap directory"; a 2-byte name makes a 32-byte entry).
 */
export function bitmapDirectoryEntrySize(entry: Pick<BitmapEntry, 'name' | 'extraData'>): number {
  return alignUp(ENTRY_HEAD_BYTES + entry.extraData.length + encodeString(entry.name).length, 8);
}

/**
 * The directory as stored: the inverse of decodeBitmapDirectory. Names are checked against the spec's limits
 * here, so a writer can never store a directory QEMU would refuse to load.
 */
export function encodeBitmapDirectory(entries: readonly BitmapEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.reduce((sum, entry) => sum + bitmapDirectoryEntrySize(entry), 0));
  const v = view(bytes);
  let at = 0;
  for (const entry of entries) {
    const name = encodeString(entry.name);
    if (name.length === 0 || name.length > MAX_BITMAP_NAME) {
      throw new DiskError('E_INVALID', `bitmap name '${entry.name}' must be 1 to ${MAX_BITMAP_NAME} bytes long`);
    }
    writeU64(v, at, entry.tableOffset);
    v.setUint32(at + 8, entry.tableSize);
    v.setUint32(at + 12, entry.flags);
    v.setUint8(at + 16, entry.type);
    v.setUint8(at + 17, entry.granularityBits);
    v.setUint16(at + 18, name.length);
    v.setUint32(at + 20, entry.extraData.length);
    bytes.set(entry.extraData, at + ENTRY_HEAD_BYTES);
    bytes.set(name, at + ENTRY_HEAD_BYTES + entry.extraData.length);
    at += bitmapDirectoryEntrySize(entry);
  }
  return bytes;
}
