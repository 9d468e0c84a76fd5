import { ALL_SUBCLUSTERS, encodeL2Entry, type L2Entry, type L2EntryFields } from '@q/format';
import { L1Table } from '@q/mapper';
import { DiskError } from '@q/raw';
import { readSnapshotL1 } from '@q/snapshots';
import { newHostCluster } from './host-allocation.js';
import type { SnapshotParts } from './snapshot-ops.js';
import { l2Tables } from './snapshot-tree.js';

/** Entry changes planned before the data they name is durable; applied (and the plan emptied) at this many. */
const APPLY_EVERY = 4096;

/** An L2 table of some tree: the L1 entry that names it (for errors) and where it is. */
type TableRef = [l1Index: number, tableOffset: number];

/** One zero entry's replacement: where it is, and what it becomes. */
interface PlannedEntry {
  tableOffset: number;
  l1Index: number;
  index: number;
  entry: L2EntryFields;
}

/** References to drop once the tables no longer name the cluster: `count` off `host`'s refcount. */
interface Release {
  host: number;
  count: number;
}

const UNALLOCATED: L2EntryFields = { compressed: false, hostOffset: 0, compressedBytes: 0, copied: false, allocMask: 0, zeroMask: 0 };

/**
 * Rewrites every zero cluster (the zero flag, v3 only) of every mapping tree of the image, the active L1 table's
 * and each internal snapshot's, into what a v2 image can say, in place in the L2 tables (a table shared between
 * trees is changed once, for all of them), as qemu-img amend -o compat=0.10 does (observed on 7.2, same layout):
 * - a zero cluster without a host cluster becomes unallocated when the image has no backing file (it reads zeros
 *   as it is), and otherwise gets a new host cluster of zeros, counted once per tree that reaches its table;
 * - a zero cluster with a host cluster (preallocated) keeps it, zeros written into it. Except where QEMU loses
 *   data: when another entry reads data from that host cluster (a snapshot's, after the active state zeroed the
 *   cluster they shared), qemu-img 7.2 zeroes the snapshot's data too. Here the entry is handled as one without a
 *   host cluster, and its references to the shared one are dropped afterwards.
 * COPIED is set where the entry's table and cluster are this tree's alone.
 *
 * Ordering: new clusters are counted and every zero written and synced before any table names them; only then are
 * the entries changed (in the table cache, written back by the caller's flush, see withDirtyBit), and references
 * are dropped only once the tables that held them are durable. A crash in between leaves leaked clusters at most.
 * Under the metadata lock, with the write path flushed.
 */
export async function expandZeroClusters(parts: SnapshotParts, backed: boolean): Promise<void> {
  const { geometry, file, metadata } = parts;
  // v2 has neither: a downgrade refuses them before it gets here (their zero bits are per subcluster).
  if (geometry.extendedL2 || geometry.externalDataFile) throw new DiskError('E_UNSUPPORTED', 'zero clusters can only be expanded in standard L2 tables', { file: file.name });
  const trees: Uint8Array[] = [parts.l1.raw];
  for (const snapshot of metadata.snapshots) trees.push(await readSnapshotL1(file, snapshot, geometry, file.end));
  const tables = distinctTables(parts, trees);
  const { withZeros, keepInPlace } = await surveyZeros(parts, tables);
  const zeros = new Uint8Array(geometry.clusterSize);
  const releases: Release[] = [];
  let planned: PlannedEntry[] = [];
  for (const [l1Index, tableOffset] of withZeros) {
    for (const plan of await planTable(parts, l1Index, tableOffset, { backed, keepInPlace, zeros, releases })) planned.push(plan);
    if (planned.length >= APPLY_EVERY) planned = await applyPlanned(parts, planned);
  }
  await applyPlanned(parts, planned);
  if (releases.length === 0) return;
  await parts.l2Cache.flush();
  await file.flush();
  for (const { host, count } of releases) await parts.refcounts.adjust(host / geometry.clusterSize, -count);
}

/** Every L2 table the trees reach, each once (tables shared between trees are one table), in tree order. */
function distinctTables(parts: SnapshotParts, trees: Uint8Array[]): TableRef[] {
  const seen = new Set<number>();
  const tables: TableRef[] = [];
  for (const tree of trees) {
    for (const [l1Index, tableOffset] of l2Tables(new L1Table(tree, 0, parts.geometry.clusterSize, parts.imageName))) {
      if (seen.has(tableOffset)) continue;
      seen.add(tableOffset);
      tables.push([l1Index, tableOffset]);
    }
  }
  return tables;
}

/** Calls `visit` with every entry of each table (decoded, so every pointer is checked). */
async function eachEntry(parts: SnapshotParts, tables: TableRef[], visit: (entry: L2Entry, index: number, tableOffset: number) => void): Promise<void> {
  for (const [l1Index, tableOffset] of tables) {
    const table = parts.l2Cache.peek(tableOffset) ?? (await parts.mapper.loadL2(tableOffset, l1Index));
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let index = 0; index < parts.geometry.l2Entries; index++) visit(parts.mapper.decodeEntry(view, index), index, tableOffset);
  }
}

function isZero(entry: L2Entry): boolean {
  return !entry.compressed && entry.zeroMask !== 0;
}

/**
 * One walk of every table: the tables that hold zero clusters (the only ones planned), and the host clusters of
 * preallocated zero clusters that no entry reads data from (zeros can go into them; a second walk finds readers,
 * only when there are such clusters at all).
 */
async function surveyZeros(parts: SnapshotParts, tables: TableRef[]): Promise<{ withZeros: TableRef[]; keepInPlace: Set<number> }> {
  const { clusterSize } = parts.geometry;
  const withZeros = new Set<number>();
  const keepInPlace = new Set<number>();
  await eachEntry(parts, tables, (entry, _index, tableOffset) => {
    if (!isZero(entry)) return;
    withZeros.add(tableOffset);
    if (entry.hostOffset !== 0) keepInPlace.add(entry.hostOffset);
  });
  if (keepInPlace.size > 0) {
    await eachEntry(parts, tables, (entry) => {
      if (isZero(entry) || entry.hostOffset === 0) return;
      // A compressed cluster's bytes may start and end in different host clusters.
      const first = Math.floor(entry.hostOffset / clusterSize) * clusterSize;
      const last = entry.compressed ? Math.floor((entry.hostOffset + entry.compressedBytes - 1) / clusterSize) * clusterSize : first;
      for (let host = first; host <= last; host += clusterSize) keepInPlace.delete(host);
    });
  }
  return { withZeros: tables.filter(([, tableOffset]) => withZeros.has(tableOffset)), keepInPlace };
}

interface PlanContext {
  backed: boolean;
  keepInPlace: Set<number>;
  zeros: Uint8Array;
  releases: Release[];
}

/** The zero entries of one L2 table and what each becomes, with the clusters they get allocated and zeroed. */
async function planTable(parts: SnapshotParts, l1Index: number, tableOffset: number, context: PlanContext): Promise<PlannedEntry[]> {
  const { geometry, refcounts, file, regions } = parts;
  const { clusterSize } = geometry;
  const zeroEntries: Array<{ index: number; hostOffset: number }> = [];
  await eachEntry(parts, [[l1Index, tableOffset]], (entry, index) => {
    if (isZero(entry)) zeroEntries.push({ index, hostOffset: entry.hostOffset });
  });
  // A cluster's refcount counts the trees that reach it: through a shared table, every tree sharing it.
  const tableRefs = await refcounts.get(tableOffset / clusterSize);
  const plans: PlannedEntry[] = [];
  for (const { index, hostOffset } of zeroEntries) {
    let host = context.keepInPlace.has(hostOffset) ? hostOffset : 0;
    if (hostOffset !== 0 && host === 0) context.releases.push({ host: hostOffset, count: tableRefs });
    if (host === 0 && !context.backed) {
      plans.push({ tableOffset, l1Index, index, entry: UNALLOCATED });
      continue;
    }
    if (host === 0) {
      host = await newHostCluster(parts, l1Index * geometry.l2Entries + index);
      if (tableRefs > 1) await refcounts.adjust(host / clusterSize, tableRefs - 1);
    } else {
      const overlapped = regions.overlap(host, clusterSize);
      if (overlapped !== undefined) throw new DiskError('E_CORRUPT', `zero cluster at 0x${host.toString(16)} overlaps the ${overlapped}`, { file: file.name, offset: host });
    }
    await file.write(context.zeros, host);
    const copied = tableRefs === 1 && (await refcounts.get(host / clusterSize)) === 1;
    plans.push({ tableOffset, l1Index, index, entry: { compressed: false, hostOffset: host, compressedBytes: 0, copied, allocMask: ALL_SUBCLUSTERS, zeroMask: 0 } });
  }
  return plans;
}

/** Makes the planned clusters' counts and zeros durable, then changes the entries in the cached tables. */
async function applyPlanned(parts: SnapshotParts, planned: PlannedEntry[]): Promise<PlannedEntry[]> {
  if (planned.length === 0) return planned;
  await parts.syncRefcounts();
  await parts.file.flush();
  const { geometry, mapper, l2Cache } = parts;
  for (let i = 0; i < planned.length; ) {
    const { tableOffset, l1Index } = planned[i]!;
    const table = l2Cache.peek(tableOffset) ?? (await mapper.loadL2(tableOffset, l1Index));
    // From here to markDirty nothing awaits: the cache cannot drop the table between the change and the mark.
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (; i < planned.length && planned[i]!.tableOffset === tableOffset; i++) encodeL2Entry(view, planned[i]!.index, planned[i]!.entry, geometry);
    l2Cache.markDirty(tableOffset);
  }
  return [];
}
