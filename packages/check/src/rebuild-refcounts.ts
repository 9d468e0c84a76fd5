import { DiskError, type BlockFile } from '@q/raw';
import { MAX_REFCOUNT_TABLE_BYTES, encodeHeaderFields, encodeRefcountTable, type Geometry, type QcowHeader } from '@q/format';
import type { ExpectedRefcounts } from './expected-refcounts.js';

export interface RebuiltRefcounts {
  tableOffset: number;
  tableClusters: number;
}

/**
 * Writes fresh refcount blocks and a fresh refcount table holding `expected` (plus the new structures' own
 * clusters), then points the header (`header`'s other fields are not written) at them. Every new cluster is taken where `expected` is 0, so nothing in
 * use, the old table and blocks included, is overwritten: a crash before the header switch leaves the old
 * structures in charge, a crash after it leaves the old ones as leaks. Order: blocks and table, flush, header
 * (offset and size in one write), flush.
 *
 * Placement follows QEMU's rebuild (first free cluster for each block, in cluster order; then the first free
 * run for the table, redoing the blocks that cover it until the table stops growing), so the repaired image
 * is laid out as `qemu-img check -r all` would lay it out. The old structures stay counted in `expected`: the
 * caller's next comparison frees them as leaks, which is how QEMU reports them too.
 */
export async function rebuildRefcounts(
  file: BlockFile,
  header: QcowHeader,
  geometry: Geometry,
  expected: ExpectedRefcounts,
): Promise<RebuiltRefcounts> {
  const state: RebuildState = { file, geometry, expected, table: [] };
  let grown = await writeBlocks(state, 0, expected.size);
  let tableStart = 0;
  let tableClusters = 0;
  // The table grows when the blocks it must list reach past what it can hold; each round places it afresh (an
  // earlier, smaller placement stays allocated: the next comparison frees it as a leak).
  while (grown) {
    tableClusters = Math.ceil((state.table.length * 8) / geometry.clusterSize);
    if (tableClusters * geometry.clusterSize > MAX_REFCOUNT_TABLE_BYTES) {
      throw new DiskError('E_TOO_LARGE', `the rebuilt refcount table would need ${tableClusters} clusters`, { file: file.name });
    }
    tableStart = expected.findFree(0, tableClusters);
    for (let i = 0; i < tableClusters; i++) expected.set(tableStart + i, 1);
    grown = await writeBlocks(state, tableStart, tableStart + tableClusters);
  }
  const tableOffset = tableStart * geometry.clusterSize;
  await file.write(encodeRefcountTable(state.table, geometry.clusterSize, tableClusters), tableOffset);
  await file.flush();
  // refcount_table_offset and refcount_table_clusters are adjacent: they change together in one write.
  const switched = { ...header, refcountTableOffset: tableOffset, refcountTableClusters: tableClusters };
  const patch = encodeHeaderFields(switched, ['refcountTableOffset', 'refcountTableClusters']);
  await file.write(patch.bytes, patch.offset);
  await file.flush();
  return { tableOffset, tableClusters };
}

interface RebuildState {
  file: BlockFile;
  geometry: Geometry;
  expected: ExpectedRefcounts;
  /** The new refcount table: block offsets by index (0 = none yet); its length is a whole number of clusters. */
  table: number[];
}

/**
 * Writes the refcount block of every block range in [first, end) that holds a non-zero count, allocating the
 * blocks that do not exist yet. A new block's own cluster gets counted too, which may reach a later range (then
 * `end` grows to cover it). Returns whether the table had to grow.
 */
async function writeBlocks(state: RebuildState, first: number, end: number): Promise<boolean> {
  const { geometry, expected, table } = state;
  const perBlock = geometry.refcountBlockEntries;
  let grown = false;
  let firstFree = 0;
  let cursor = first;
  while (cursor < end) {
    const cluster = nextUsed(expected, cursor, end);
    if (cluster === undefined) break;
    const index = Math.floor(cluster / perBlock);
    const blockStart = index * perBlock;
    let blockOffset = table[index] ?? 0;
    if (blockOffset === 0) {
      // Never inside a range whose block is already written: its count would be missing there.
      firstFree = expected.findFree(Math.max(firstFree, blockStart), 1);
      expected.set(firstFree, 1);
      if (firstFree >= end) end = firstFree + 1;
      blockOffset = firstFree * geometry.clusterSize;
      if (table.length <= index) {
        const entries = (Math.ceil(((index + 1) * 8) / geometry.clusterSize) * geometry.clusterSize) / 8;
        while (table.length < entries) table.push(0);
        grown = true;
      }
      table[index] = blockOffset;
    }
    await state.file.write(expected.encodeBlock(blockStart, perBlock, geometry.clusterSize), blockOffset);
    cursor = blockStart + perBlock;
  }
  return grown;
}

/** The first cluster in [from, end) with a non-zero count. */
function nextUsed(expected: ExpectedRefcounts, from: number, end: number): number | undefined {
  for (const [start, stop] of expected.populatedRuns(from, end)) {
    for (let cluster = start; cluster < stop; cluster++) if (expected.get(cluster) !== 0) return cluster;
  }
  return undefined;
}
