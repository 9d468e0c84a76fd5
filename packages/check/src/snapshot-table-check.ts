import { DiskError, readPadded, type BlockFile } from '@q/raw';
import { MAX_SNAPSHOTS, MAX_SNAPSHOT_EXTRA_DATA, MAX_SNAPSHOT_TABLE_BYTES, view } from '@q/format';
import type { CheckCounts, CheckLog, RepairFlags } from './check-result.js';
import type { HostOffset } from './host-offset.js';
import type { ImageLayout } from './image-layout.js';

/** One snapshot table entry as the check reads it: the fields it needs, and the bytes a rewrite keeps. */
export interface CheckedSnapshot {
  /** The 40-byte fixed part as stored. */
  fixed: Uint8Array;
  l1TableOffset: HostOffset;
  l1Size: number;
  /** The extra data size in effect (cut to 1024 when a repair drops the excess). */
  extraDataSize: number;
  /** The known extra data (24 bytes, zero-filled past what the entry has) and what follows it. */
  knownExtra: Uint8Array;
  unknownExtra: Uint8Array;
  idBytes: Uint8Array;
  nameBytes: Uint8Array;
}

export interface SnapshotTable {
  offset: HostOffset;
  entries: CheckedSnapshot[];
  /** Bytes from the table's start to the end of its last entry (what it occupies). */
  bytes: number;
}

const KNOWN_EXTRA = 24;

/**
 * Reads the snapshot table the way QEMU's check does: leniently (bytes past the end of the file are zeros),
 * reporting what it finds. Too many snapshots, too much extra data or a table over 64 MiB stop the check
 * (qemu-img: "Check failed: File too large"), unless `-r all` drops the excess. v3 entries with less than 16
 * bytes of extra data are corruptions ("incomplete"); they and dropped extra data are repaired by rewriting the
 * table (see rewriteSnapshotTable) once the refcounts are right.
 */
export async function readSnapshotTable(layout: ImageLayout, counts: CheckCounts, fix: RepairFlags, log: CheckLog): Promise<SnapshotTable> {
  const { file, header } = layout;
  let count = layout.rawSnapshotCount;
  const offset = layout.rawSnapshotsOffset;
  if (count > MAX_SNAPSHOTS) {
    if (!fix.errors) {
      counts.checkErrors++;
      log('ERROR snapshot table too large', 'report');
      log(`You can force-remove all ${count - MAX_SNAPSHOTS} overhanging snapshots with qemu-img check -r all`);
      throw new DiskError('E_TOO_LARGE', 'File too large', { file: file.name });
    }
    log(`Discarding ${count - MAX_SNAPSHOTS} overhanging snapshots`);
    counts.corruptionsFixed += count - MAX_SNAPSHOTS;
    count = MAX_SNAPSHOTS;
    await writeSnapshotCount(file, count);
  }
  if (typeof offset === 'bigint' || offset % layout.geometry.clusterSize !== 0) {
    counts.checkErrors++;
    log('ERROR snapshot table offset invalid', 'report');
    throw new DiskError('E_CORRUPT', 'Invalid argument', { file: file.name });
  }
  const reader = new WindowReader(file, offset);
  const entries: CheckedSnapshot[] = [];
  let at = 0;
  let tableLength = 0;
  for (let i = 0; i < count; i++) {
    at = alignUp8(at);
    tableLength = alignUp8(tableLength);
    const fixed = await reader.read(at, 40);
    const v = view(fixed);
    at += 40;
    tableLength += 40;
    let extraDataSize = v.getUint32(36);
    const idLength = v.getUint16(12);
    const nameLength = v.getUint16(14);
    const storedExtraSize = extraDataSize;
    if (extraDataSize > MAX_SNAPSHOT_EXTRA_DATA) {
      if (!fix.errors) {
        counts.checkErrors++;
        log(`ERROR failed to read the snapshot table: Too much extra metadata in snapshot table entry ${i}`, 'report');
        log('You can force-remove this extra metadata with qemu-img check -r all');
        throw new DiskError('E_TOO_LARGE', 'File too large', { file: file.name });
      }
      // Keep the first 1024 bytes (the table rewrite stores them); the rest is dropped.
      log(`Discarding too much extra metadata in snapshot table entry ${i} (${extraDataSize} > ${MAX_SNAPSHOT_EXTRA_DATA})`);
      counts.corruptions++;
      extraDataSize = MAX_SNAPSHOT_EXTRA_DATA;
    }
    const knownExtra = new Uint8Array(KNOWN_EXTRA);
    knownExtra.set(await reader.read(at, Math.min(KNOWN_EXTRA, extraDataSize)));
    at += Math.min(KNOWN_EXTRA, extraDataSize);
    const unknownExtra = extraDataSize > KNOWN_EXTRA ? await reader.read(at, extraDataSize - KNOWN_EXTRA) : new Uint8Array(0);
    // The next field follows the extra data as stored, however much of it is kept.
    at += Math.max(0, storedExtraSize - KNOWN_EXTRA);
    tableLength += extraDataSize;
    const idBytes = await reader.read(at, idLength);
    at += idLength;
    const nameBytes = await reader.read(at, nameLength);
    at += nameLength;
    tableLength += idLength + nameLength;
    if (tableLength > MAX_SNAPSHOT_TABLE_BYTES) {
      if (!fix.errors) {
        counts.checkErrors++;
        log('ERROR failed to read the snapshot table: Snapshot table is too big', 'report');
        log(`You can force-remove all ${count - i} overhanging snapshots with qemu-img check -r all`);
        throw new DiskError('E_TOO_LARGE', 'File too large', { file: file.name });
      }
      // This entry and all after it go: the header's count shrinks at once, the table is rewritten later.
      log(`Discarding ${count - i} overhanging snapshots (snapshot table is too big)`);
      counts.corruptionsFixed += count - i;
      await writeSnapshotCount(file, i);
      break;
    }
    const l1Hi = v.getUint32(0);
    const l1Lo = v.getUint32(4);
    entries.push({
      fixed,
      l1TableOffset: l1Hi < 0x20_0000 ? l1Hi * 0x1_0000_0000 + l1Lo : v.getBigUint64(0),
      l1Size: v.getUint32(8),
      extraDataSize,
      knownExtra,
      unknownExtra,
      idBytes,
      nameBytes,
    });
  }
  if (header.version >= 3) {
    // v3 requires the 64-bit VM state size and the disk size in every entry's extra data.
    entries.forEach((entry, i) => {
      if (entry.extraDataSize >= 16) return;
      counts.corruptions++;
      log(`${fix.errors ? 'Repairing' : 'ERROR'} snapshot table entry ${i} is incomplete`);
    });
  }
  return { offset, entries, bytes: at };
}

/** Writes nb_snapshots in the header (synced), for repairs that drop snapshots. */
async function writeSnapshotCount(file: BlockFile, count: number): Promise<void> {
  const bytes = new Uint8Array(4);
  view(bytes).setUint32(0, count);
  await file.write(bytes, 60);
  await file.flush();
}

/** A C string's text: the bytes up to the first NUL (QEMU keeps ids and names as C strings). */
export function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

function alignUp8(value: number): number {
  return Math.ceil(value / 8) * 8;
}

/** Reads a region piece by piece through a 64 KiB window; past the end of the file bytes are zeros. */
class WindowReader {
  private windowStart = -1;
  private window = new Uint8Array(0);

  constructor(private readonly file: BlockFile, private readonly base: number) {}

  async read(at: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    if (this.windowStart < 0 || at < this.windowStart || at + length > this.windowStart + this.window.length) {
      this.windowStart = at;
      this.window = new Uint8Array(Math.max(64 * 1024, length));
      await readPadded(this.file, this.window, this.base + at);
    }
    return this.window.slice(at - this.windowStart, at - this.windowStart + length);
  }
}
