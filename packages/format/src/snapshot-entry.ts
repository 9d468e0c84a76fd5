import { view } from './bytes.js';

/**
 * One snapshot table entry's layout (spec: "Snapshots"): a 40-byte fixed part, then the extra data, the id and the
 * name (neither NUL-terminated); the table pads each entry to 8 bytes. Fields here are exactly as stored (64-bit
 * ones as bigints), for `qcow check`, which must read and rewrite entries whatever they hold; decodeSnapshotTable
 * builds the engine's checked entries on top of them.
 */
export const SNAPSHOT_ENTRY_FIXED_BYTES = 40;
/** The extra data QEMU writes: 64-bit VM state size, disk size, icount (v3 entries need at least the first 16). */
export const SNAPSHOT_KNOWN_EXTRA_BYTES = 24;
/** icount when the snapshot has none (-1). */
export const SNAPSHOT_NO_ICOUNT = 0xffff_ffff_ffff_ffffn;

/** The fixed part of an entry, without judgement. */
export interface SnapshotEntryHead {
  l1TableOffset: bigint;
  l1Size: number;
  idLength: number;
  nameLength: number;
  dateSeconds: number;
  dateNanoseconds: number;
  vmClockNanoseconds: bigint;
  /** The old 32-bit VM state size; the 64-bit one in the extra data replaces it when present. */
  vmStateSize32: number;
  extraDataSize: number;
}

/** An entry as stored: its fixed fields (the lengths follow from the bytes), extra data, id and name. */
export type StoredSnapshotEntry = Omit<SnapshotEntryHead, 'idLength' | 'nameLength' | 'extraDataSize'> & {
  extraData: Uint8Array;
  idBytes: Uint8Array;
  nameBytes: Uint8Array;
};

/** The known extra data fields, each present when the extra data reaches it. */
export interface SnapshotExtraFields {
  vmStateSize?: bigint;
  diskSize?: bigint;
  /** SNAPSHOT_NO_ICOUNT when the snapshot has none. */
  icount?: bigint;
}

/** Decodes the fixed part at `at` (the caller has checked that 40 bytes are there). */
export function decodeSnapshotEntryHead(bytes: Uint8Array, at = 0): SnapshotEntryHead {
  const v = view(bytes);
  return {
    l1TableOffset: v.getBigUint64(at),
    l1Size: v.getUint32(at + 8),
    idLength: v.getUint16(at + 12),
    nameLength: v.getUint16(at + 14),
    dateSeconds: v.getUint32(at + 16),
    dateNanoseconds: v.getUint32(at + 20),
    vmClockNanoseconds: v.getBigUint64(at + 24),
    vmStateSize32: v.getUint32(at + 32),
    extraDataSize: v.getUint32(at + 36),
  };
}

/** An entry's bytes, unpadded: 40 + extra data + id + name. */
export function encodeSnapshotEntry(entry: StoredSnapshotEntry): Uint8Array {
  const { extraData, idBytes, nameBytes } = entry;
  const bytes = new Uint8Array(SNAPSHOT_ENTRY_FIXED_BYTES + extraData.length + idBytes.length + nameBytes.length);
  const v = view(bytes);
  v.setBigUint64(0, entry.l1TableOffset);
  v.setUint32(8, entry.l1Size);
  v.setUint16(12, idBytes.length);
  v.setUint16(14, nameBytes.length);
  v.setUint32(16, entry.dateSeconds);
  v.setUint32(20, entry.dateNanoseconds);
  v.setBigUint64(24, entry.vmClockNanoseconds);
  v.setUint32(32, entry.vmStateSize32);
  v.setUint32(36, extraData.length);
  bytes.set(extraData, SNAPSHOT_ENTRY_FIXED_BYTES);
  bytes.set(idBytes, SNAPSHOT_ENTRY_FIXED_BYTES + extraData.length);
  bytes.set(nameBytes, SNAPSHOT_ENTRY_FIXED_BYTES + extraData.length + idBytes.length);
  return bytes;
}

/** The known fields of an entry's extra data (unknown ones, past 24 bytes, are the caller's to keep). */
export function decodeSnapshotExtraData(extra: Uint8Array): SnapshotExtraFields {
  const v = view(extra);
  const fields: SnapshotExtraFields = {};
  if (extra.length >= 8) fields.vmStateSize = v.getBigUint64(0);
  if (extra.length >= 16) fields.diskSize = v.getBigUint64(8);
  if (extra.length >= 24) fields.icount = v.getBigUint64(16);
  return fields;
}

/**
 * Writes the given known fields into `extra` where it is long enough: an entry keeps the extra data size it has,
 * and a field it does not reach is not stored (readers then fall back, e.g. to the 32-bit VM state size).
 */
export function writeSnapshotExtraData(extra: Uint8Array, fields: SnapshotExtraFields): void {
  const v = view(extra);
  if (fields.vmStateSize !== undefined && extra.length >= 8) v.setBigUint64(0, fields.vmStateSize);
  if (fields.diskSize !== undefined && extra.length >= 16) v.setBigUint64(8, fields.diskSize);
  if (fields.icount !== undefined && extra.length >= 24) v.setBigUint64(16, fields.icount);
}
