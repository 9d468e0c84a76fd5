import type { L2Entry } from '@q/format';
import type { NewTable } from '@q/mapper';
import type { NewEntryDecision, WritePath } from './write-path.js';

/** Bytes of L2 tables one bulk change handles under one claim and one lock hold (64 tables of 64 KiB). */
const TABLE_BYTES_AT_ONCE = 4 << 20;

/**
 * What a bulk change decides for each entry: the new entry, or undefined to leave it (WritePath.changeEntry). It
 * must depend on the entry alone: runs of empty entries are asked about once.
 */
export type EntryDecider = (entry: L2Entry) => NewEntryDecision | undefined;

/**
 * WritePath.changeEntry for every guest cluster of `[first, end)`, a batch of L2 tables at a time: one range claim
 * and one lock hold per batch instead of a claim, a lock turn and a promise per cluster (zeroing 256 GiB took 28 s
 * that way, most of it garbage collection). A table the image has is changed in place entry by entry; a missing
 * one is built as bytes, every entry of the range being `decide`'s answer for an empty entry, and the batch's new
 * tables are put in place together (L2Writer.installTables: one round of syncs, where writableTable makes two per
 * table). A missing table is made even when nothing in it changes, as the cluster-at-a-time path (and QEMU) does,
 * and tables are allocated in ascending order as that path allocates them: the layout is the same.
 */
export async function changeEntryRange(writes: WritePath, first: number, end: number, decide: EntryDecider): Promise<void> {
  const { clusterSize, l2Entries } = writes.p.geometry;
  const tablesAtOnce = Math.max(1, Math.floor(TABLE_BYTES_AT_ONCE / clusterSize));
  for (let from = first; from < end; ) {
    const to = Math.min(end, (Math.floor(from / l2Entries) + tablesAtOnce) * l2Entries);
    const release = await writes.claimRange(from, to);
    try {
      await writes.p.lock.run(() => changeTables(writes, from, to, decide));
    } finally {
      release();
    }
    from = to;
  }
}

/** One batch, under the metadata lock: the tables of clusters `[from, to)`. */
async function changeTables(writes: WritePath, from: number, to: number, decide: EntryDecider): Promise<void> {
  const { geometry, l2Writer, mapper, refcounts } = writes.p;
  const { l2Entries, clusterSize } = geometry;
  const fresh: NewTable[] = [];
  // What an empty entry becomes: asked once, the same for every missing table.
  let forEmpty: { next: NewEntryDecision | undefined } | undefined;
  for (let l1Index = Math.floor(from / l2Entries); l1Index * l2Entries < to; l1Index++) {
    const base = l1Index * l2Entries;
    const lo = Math.max(from, base) - base;
    const hi = Math.min(to, base + l2Entries) - base;
    if (mapper.l1.l2Offset(l1Index) !== 0) {
      const table = await l2Writer.writableTable(l1Index);
      for (let index = lo; index < hi; ) {
        // A run of empty entries (most of a table a guest has not filled) is decided once and filled: no decode
        // per entry. Empty entries hold nothing to release.
        let runEnd = index;
        while (runEnd < hi && isEmptyEntry(table.view, runEnd, geometry.l2EntryBytes)) runEnd++;
        if (runEnd === index) {
          writes.applyDecision(table, index++, decide);
          continue;
        }
        forEmpty ??= { next: decide(emptyEntry(writes)) };
        if (forEmpty.next !== undefined) {
          l2Writer.fillEntries(table.view, index, runEnd - index, forEmpty.next);
          l2Writer.markChanged(table);
        }
        index = runEnd;
      }
      continue;
    }
    const bytes = new Uint8Array(clusterSize);
    const view = new DataView(bytes.buffer);
    forEmpty ??= { next: decide(emptyEntry(writes)) };
    if (forEmpty.next !== undefined) l2Writer.fillEntries(view, lo, hi - lo, forEmpty.next);
    fresh.push({ l1Index, offset: await refcounts.allocate(1), bytes });
  }
  if (fresh.length > 0) await l2Writer.installTables(fresh);
}

/** An entry whose words are all zero: unallocated, no flags (an extended entry's masks included). */
function isEmptyEntry(view: DataView, index: number, entryBytes: number): boolean {
  const at = index * entryBytes;
  for (let word = at; word < at + entryBytes; word += 4) if (view.getUint32(word) !== 0) return false;
  return true;
}

/** The decoded form of an empty entry, what `decide` is asked about once for every run of them. */
function emptyEntry(writes: WritePath): L2Entry {
  return writes.p.mapper.decodeEntry(new DataView(new ArrayBuffer(writes.p.geometry.l2EntryBytes)), 0);
}
