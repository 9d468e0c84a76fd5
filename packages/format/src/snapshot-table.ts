import { DiskError } from '@q/raw';
import { alignUp, decodeString, encodeString, safeU64 } from './bytes.js';
import { MAX_SNAPSHOT_EXTRA_DATA } from './limits.js';
import {
  decodeSnapshotEntryHead,
  decodeSnapshotExtraData,
  encodeSnapshotEntry,
  SNAPSHOT_ENTRY_FIXED_BYTES,
  SNAPSHOT_NO_ICOUNT,
  writeSnapshotExtraData,
} from './snapshot-entry.js';

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
  const entries: SnapshotEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + SNAPSHOT_ENTRY_FIXED_BYTES > bytes.length) throw overrun(i);
    const head = decodeSnapshotEntryHead(bytes, at);
    if (head.extraDataSize > MAX_SNAPSHOT_EXTRA_DATA) {
      throw new DiskError('E_TOO_LARGE', `Too much extra metadata in snapshot table entry ${i} (${head.extraDataSize} bytes)`);
    }
    const extraAt = at + SNAPSHOT_ENTRY_FIXED_BYTES;
    const idAt = extraAt + head.extraDataSize;
    const nameAt = idAt + head.idLength;
    const end = nameAt + head.nameLength;
    if (end > bytes.length) throw overrun(i);
    const extra = decodeSnapshotExtraData(bytes.subarray(extraAt, idAt));
    entries.push({
      l1TableOffset: safeU64(head.l1TableOffset, 'snapshot L1 table offset'),
      l1Size: head.l1Size,
      id: decodeString(bytes.subarray(idAt, nameAt)),
      name: decodeString(bytes.subarray(nameAt, end)),
      dateSeconds: head.dateSeconds,
      dateNanoseconds: head.dateNanoseconds,
      vmClockNanoseconds: safeU64(head.vmClockNanoseconds, 'snapshot VM clock'),
      vmStateSize: extra.vmStateSize !== undefined ? safeU64(extra.vmStateSize, 'snapshot VM state size') : head.vmStateSize32,
      diskSize: extra.diskSize !== undefined ? safeU64(extra.diskSize, 'snapshot disk size') : undefined,
      // icount -1 (or any value with the top bit set) means none.
      icount: extra.icount !== undefined && extra.icount < 1n << 63n ? safeU64(extra.icount, 'snapshot icount') : undefined,
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
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + SNAPSHOT_ENTRY_FIXED_BYTES > bytes.length) return undefined;
    const head = decodeSnapshotEntryHead(bytes, at);
    const end = at + SNAPSHOT_ENTRY_FIXED_BYTES + head.extraDataSize + head.idLength + head.nameLength;
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
  return alignUp(SNAPSHOT_ENTRY_FIXED_BYTES + entry.extraData.length + storedBytes(entry.id, entry.idBytes).length + storedBytes(entry.name, entry.nameBytes).length, 8);
}

/** Serialises a snapshot table; v3 images need at least 16 bytes of extra data per entry (QEMU writes 24). */
export function encodeSnapshotTable(entries: SnapshotEntry[]): Uint8Array {
  const size = entries.reduce((sum, entry) => sum + snapshotEntrySize(entry), 0);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const entry of entries) {
    // The extra data keeps its size and unknown fields; the known fields that fit are written from the entry.
    const extraData = entry.extraData.slice();
    writeSnapshotExtraData(extraData, {
      vmStateSize: BigInt(entry.vmStateSize),
      diskSize: entry.diskSize === undefined ? undefined : BigInt(entry.diskSize),
      icount: entry.icount === undefined ? SNAPSHOT_NO_ICOUNT : BigInt(entry.icount),
    });
    const stored = encodeSnapshotEntry({
      l1TableOffset: BigInt(entry.l1TableOffset),
      l1Size: entry.l1Size,
      dateSeconds: entry.dateSeconds,
      dateNanoseconds: entry.dateNanoseconds,
      vmClockNanoseconds: BigInt(entry.vmClockNanoseconds),
      vmStateSize32: Math.min(entry.vmStateSize, 0xffff_ffff),
      extraData,
      idBytes: storedBytes(entry.id, entry.idBytes),
      nameBytes: storedBytes(entry.name, entry.nameBytes),
    });
    bytes.set(stored, at);
    at += snapshotEntrySize(entry);
  }
  return bytes;
}
