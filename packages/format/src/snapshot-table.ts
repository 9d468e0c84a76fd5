import { DiskError } from '@q/raw';
import { alignUp, decodeString, encodeString, readU64, view, writeU64 } from './bytes.js';
import { MAX_SNAPSHOT_EXTRA_DATA } from './limits.js';

/** One snapshot table entry (spec: "Snapshots"). */
export interface SnapshotEntry {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSeconds: number;
  dateNanoseconds: number;
  vmClockNanoseconds: number;
  /** VM state size: the 64-bit extra field when present, else the 32-bit one. */
  vmStateSize: number;
  /** The disk size when the snapshot was taken (extra data), or undefined for old entries without it. */
  diskSize: number | undefined;
  /** Instruction count (extra data), or undefined (-1 on disk, or absent). */
  icount: number | undefined;
  /** The whole extra data area, so unknown fields survive a table rewrite. */
  extraData: Uint8Array;
  /** The id and name exactly as stored, so names that are not valid UTF-8 survive a table rewrite. */
  idBytes?: Uint8Array;
  nameBytes?: Uint8Array;
}

/**
 * Decodes `count` entries from the snapshot table bytes. The caller has already bounded `bytes` by the table
 * limit and the file size; every length read here is checked against what remains, so nothing runs past it.
 */
export function decodeSnapshotTable(bytes: Uint8Array, count: number): SnapshotEntry[] {
  const v = view(bytes);
  const entries: SnapshotEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 40 > bytes.length) throw overrun(i);
    const idLength = v.getUint16(at + 12);
    const nameLength = v.getUint16(at + 14);
    const extraSize = v.getUint32(at + 36);
    if (extraSize > MAX_SNAPSHOT_EXTRA_DATA) {
      throw new DiskError('E_TOO_LARGE', `Too much extra metadata in snapshot table entry ${i} (${extraSize} bytes)`);
    }
    const extraAt = at + 40;
    const idAt = extraAt + extraSize;
    const nameAt = idAt + idLength;
    const end = nameAt + nameLength;
    if (end > bytes.length) throw overrun(i);
    const extra = view(bytes.subarray(extraAt, idAt));
    const vmState32 = v.getUint32(at + 32);
    const icountHi = extraSize >= 24 ? extra.getInt32(16) : -1;
    entries.push({
      l1TableOffset: readU64(v, at, 'snapshot L1 table offset'),
      l1Size: v.getUint32(at + 8),
      id: decodeString(bytes.subarray(idAt, nameAt)),
      name: decodeString(bytes.subarray(nameAt, end)),
      dateSeconds: v.getUint32(at + 16),
      dateNanoseconds: v.getUint32(at + 20),
      vmClockNanoseconds: readU64(v, at + 24, 'snapshot VM clock'),
      vmStateSize: extraSize >= 8 ? readU64(extra, 0, 'snapshot VM state size') : vmState32,
      diskSize: extraSize >= 16 ? readU64(extra, 8, 'snapshot disk size') : undefined,
      icount: extraSize >= 24 && icountHi >= 0 ? readU64(extra, 16, 'snapshot icount') : undefined,
      extraData: bytes.slice(extraAt, idAt),
      idBytes: bytes.slice(idAt, nameAt),
      nameBytes: bytes.slice(nameAt, end),
    });
    at = alignUp(end, 8);
  }
  return entries;
}

/**
 * How many bytes the first `count` entries take, or undefined when `bytes` ends before they do: lets a reader
 * fetch the table in growing chunks instead of trusting any length up front.
 */
export function measureSnapshotTable(bytes: Uint8Array, count: number): number | undefined {
  const v = view(bytes);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 40 > bytes.length) return undefined;
    const end = at + 40 + v.getUint32(at + 36) + v.getUint16(at + 12) + v.getUint16(at + 14);
    if (end > bytes.length) return undefined;
    at = alignUp(end, 8);
  }
  return at;
}

function overrun(index: number): DiskError {
  return new DiskError('E_CORRUPT', `snapshot table entry ${index} runs past the end of the snapshot table`);
}

/** The stored bytes of an id or name: as read when the text is unchanged, else the text's UTF-8. */
function storedBytes(text: string, stored: Uint8Array | undefined): Uint8Array {
  return stored !== undefined && decodeString(stored) === text ? stored : encodeString(text);
}

/** Bytes one entry takes in the table (padded to 8). */
export function snapshotEntrySize(entry: SnapshotEntry): number {
  return alignUp(40 + entry.extraData.length + storedBytes(entry.id, entry.idBytes).length + storedBytes(entry.name, entry.nameBytes).length, 8);
}

/** Serialises a snapshot table; v3 images need at least 16 bytes of extra data per entry (QEMU writes 24). */
export function encodeSnapshotTable(entries: SnapshotEntry[]): Uint8Array {
  const size = entries.reduce((sum, entry) => sum + snapshotEntrySize(entry), 0);
  const bytes = new Uint8Array(size);
  const v = view(bytes);
  let at = 0;
  for (const entry of entries) {
    const id = storedBytes(entry.id, entry.idBytes);
    const name = storedBytes(entry.name, entry.nameBytes);
    const extra = entry.extraData.slice();
    const ev = view(extra);
    if (extra.length >= 8) writeU64(ev, 0, entry.vmStateSize);
    if (extra.length >= 16 && entry.diskSize !== undefined) writeU64(ev, 8, entry.diskSize);
    if (extra.length >= 24) {
      if (entry.icount === undefined) ev.setBigInt64(16, -1n);
      else writeU64(ev, 16, entry.icount);
    }
    writeU64(v, at, entry.l1TableOffset);
    v.setUint32(at + 8, entry.l1Size);
    v.setUint16(at + 12, id.length);
    v.setUint16(at + 14, name.length);
    v.setUint32(at + 16, entry.dateSeconds);
    v.setUint32(at + 20, entry.dateNanoseconds);
    writeU64(v, at + 24, entry.vmClockNanoseconds);
    v.setUint32(at + 32, Math.min(entry.vmStateSize, 0xffff_ffff));
    v.setUint32(at + 36, extra.length);
    bytes.set(extra, at + 40);
    bytes.set(id, at + 40 + extra.length);
    bytes.set(name, at + 40 + extra.length + id.length);
    at += snapshotEntrySize(entry);
  }
  return bytes;
}
