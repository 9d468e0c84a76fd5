import { encodeRefcountTable, encodeRefcountTableEntry, setRefcount } from '@q/format';
import type { BlockFile } from '@q/raw';
import { planRefcountStructures, type StructurePlan } from './table-growth.js';

/** What writing new refcount structures needs from the store that owns the table and the block cache. */
export interface StructureSite {
  file: BlockFile;
  clusterSize: number;
  blockEntries: number;
  refcountOrder: number;
  table: readonly number[];
  tableOffset: number;
  tableClusters: number;
  /** A cluster's refcount, through the store's cache. */
  get(cluster: number): Promise<number>;
  /** Sets a refcount in a block the table already points at. */
  set(cluster: number, value: number): Promise<void>;
  /** Writes back every changed cached block (no sync). */
  flushBlocks(): Promise<void>;
  /** Points the header at a new table in one write and makes it durable. */
  switchTable(offset: number, clusters: number): Promise<void>;
  /** Told about each area cluster counted in a new block (set() tells the store's listener for the others). */
  claimed?(cluster: number): void;
}

export interface WrittenStructures {
  /** The refcount table as it now is (longer, and the length of the new table's entries, after a switch). */
  table: number[];
  tableOffset: number;
  tableClusters: number;
  /** One past the last cluster of the area the structures took. */
  areaEnd: number;
  /** The new blocks, durable and linked: the caller's cache takes them as clean. */
  blocks: Array<{ offset: number; bytes: Uint8Array }>;
  /** The table given up for a new one: nothing points at it, but its clusters are still counted (caller frees). */
  oldTable: { offset: number; clusters: number } | undefined;
}

/**
 * Creates refcount blocks for `ranges` (and a larger table when one is past its end) in a free area from
 * `areaStart` on; the area counts itself. Order: the new blocks, and existing blocks counting the area, are written
 * and synced before anything points at them; then the table entries (synced), or for a new table the header switch
 * (synced by the callback). The caller releases the old table only after this returns.
 */
export async function writeStructures(site: StructureSite, ranges: number[], areaStart: number): Promise<WrittenStructures> {
  const { clusterSize, blockEntries } = site;
  let start = areaStart;
  let plan: StructurePlan;
  for (;;) {
    plan = planRefcountStructures({
      areaStart: start,
      neededRanges: ranges,
      clusterSize,
      blockEntries,
      tableClusters: site.tableClusters,
      hasBlock: (r) => (site.table[r] ?? 0) !== 0,
    });
    // Clusters past the file end can still carry refcounts (an allocation a crash cut short): skip them.
    let used = -1;
    for (let cluster = start; cluster < plan.areaEnd && used < 0; cluster++) if ((await site.get(cluster)) !== 0) used = cluster;
    if (used < 0) break;
    start = used + 1;
  }
  const newBlocks = new Map(plan.blocks.map(({ range, cluster }) => [range, { cluster, bytes: new Uint8Array(clusterSize) }]));
  for (let cluster = start; cluster < plan.areaEnd; cluster++) {
    const fresh = newBlocks.get(Math.floor(cluster / blockEntries));
    if (fresh === undefined) await site.set(cluster, 1);
    else {
      // Counted in a block that is not in the cache yet: tell the listener here, as set() would.
      setRefcount(fresh.bytes, cluster % blockEntries, site.refcountOrder, 1);
      site.claimed?.(cluster);
    }
  }
  for (const block of newBlocks.values()) await site.file.write(block.bytes, block.cluster * clusterSize);
  const table = [...site.table];
  for (const [range, block] of newBlocks) {
    while (table.length <= range) table.push(0);
    table[range] = block.cluster * clusterSize;
  }
  const blocks = [...newBlocks.values()].map((block) => ({ offset: block.cluster * clusterSize, bytes: block.bytes }));
  if (plan.table === undefined) {
    await site.flushBlocks();
    await site.file.flush();
    await linkBlocks(site, newBlocks);
    return { table, tableOffset: site.tableOffset, tableClusters: site.tableClusters, areaEnd: plan.areaEnd, blocks, oldTable: undefined };
  }
  const offset = plan.table.cluster * clusterSize;
  await site.file.write(encodeRefcountTable(table, clusterSize, plan.table.clusters), offset);
  await site.flushBlocks();
  await site.file.flush();
  await site.switchTable(offset, plan.table.clusters);
  while (table.length < (plan.table.clusters * clusterSize) / 8) table.push(0);
  const oldTable = { offset: site.tableOffset, clusters: site.tableClusters };
  return { table, tableOffset: offset, tableClusters: plan.table.clusters, areaEnd: plan.areaEnd, blocks, oldTable };
}

/**
 * Points the table at new blocks in waves, syncing after each: a block becomes reachable only once the block that
 * counts it is (its own range, or one linked in an earlier wave). Otherwise a crash could keep the entry of a
 * block whose own refcount lives in a block nothing points at yet: a referenced cluster with refcount 0. Blocks
 * are placed in range order, so no two count each other and every wave makes progress.
 */
async function linkBlocks(site: StructureSite, newBlocks: Map<number, { cluster: number }>): Promise<void> {
  const pending = new Map(newBlocks);
  while (pending.size > 0) {
    const wave = [...pending].filter(([range, block]) => {
      const counter = Math.floor(block.cluster / site.blockEntries);
      return counter === range || !pending.has(counter);
    });
    if (wave.length === 0) throw new Error('refcount blocks count each other in a cycle');
    for (const [range, block] of wave) {
      await writeTableEntry(site.file, site.tableOffset, range, block.cluster * site.clusterSize);
      pending.delete(range);
    }
    await site.file.flush();
  }
}

/** Writes one refcount table entry in place (no sync: the caller orders syncs). */
export async function writeTableEntry(file: BlockFile, tableOffset: number, range: number, blockOffset: number): Promise<void> {
  await file.write(encodeRefcountTableEntry(blockOffset), tableOffset + range * 8);
}
