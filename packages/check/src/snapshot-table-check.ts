import { DiskError, readPadded, type BlockFile } from '@q/raw';
import {
  decodeSnapshotEntryHead,
  decodeSnapshotExtraData,
  encodeHeaderFields,
  MAX_SNAPSHOTS,
  MAX_SNAPSHOT_EXTRA_DATA,
  MAX_SNAPSHOT_TABLE_BYTES,
  SNAPSHOT_ENTRY_FIXED_BYTES,
  SNAPSHOT_KNOWN_EXTRA_BYTES,
  type SnapshotEntryHead,
  type SnapshotExtraFields,
} from '@q/format';
import type { CheckCounts, CheckLog, RepairFlags } from './check-result.js';
import { bigOffset, type HostOffset } from './host-offset.js';
import type { ImageLayout } from './image-layout.js';

/** One snapshot table entry as the check reads it: the fields it needs, and what a rewrite keeps. */
export interface CheckedSnapshot {
  /** The fixed part as stored. */
  head: SnapshotEntryHead;
  l1TableOffset: HostOffset;
  l1Size: number;
  /** The extra data size in effect (cut to 1024 when a repair drops the excess). */
  extraDataSize: number;
  /** The known extra data fields the entry has, and the extra data that follows them. */
  knownExtra: SnapshotExtraFields;
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
    await writeSnapshotCount(layout, count);
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
    const head = decodeSnapshotEntryHead(await reader.read(at, SNAPSHOT_ENTRY_FIXED_BYTES));
    at += SNAPSHOT_ENTRY_FIXED_BYTES;
    tableLength += SNAPSHOT_ENTRY_FIXED_BYTES;
    let extraDataSize = head.extraDataSize;
    const { idLength, nameLength } = head;
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
    const knownBytes = Math.min(SNAPSHOT_KNOWN_EXTRA_BYTES, extraDataSize);
    const knownExtra = decodeSnapshotExtraData(await reader.read(at, knownBytes));
    at += knownBytes;
    const unknownExtra = extraDataSize > SNAPSHOT_KNOWN_EXTRA_BYTES ? await reader.read(at, extraDataSize - SNAPSHOT_KNOWN_EXTRA_BYTES) : new Uint8Array(0);
    // The next field follows the extra data as stored, however much of it is kept.
    at += Math.max(0, storedExtraSize - SNAPSHOT_KNOWN_EXTRA_BYTES);
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
      await writeSnapshotCount(layout, i);
      break;
    }
    entries.push({
      head,
      l1TableOffset: bigOffset(head.l1TableOffset),
      l1Size: head.l1Size,
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
async function writeSnapshotCount(layout: ImageLayout, count: number): Promise<void> {
  const patch = encodeHeaderFields({ ...layout.header, nbSnapshots: count }, ['nbSnapshots']);
  await layout.file.write(patch.bytes, patch.offset);
  await layout.file.flush();
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
