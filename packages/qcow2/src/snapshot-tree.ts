import { setL1EntryCopied, setL2EntryCopied, type Geometry } from '@q/format';
import { L1Table, referencedClusters, tableReferences, type ClusterMapper } from '@q/mapper';
import type { TableCache } from '@q/cache';
import type { RefcountStore } from '@q/refcount';

/**
 * Walks of a whole mapping tree (an L1 table, its L2 tables, the clusters they name), the building blocks of
 * snapshot create, apply and delete. A cluster's refcount counts the L1 tables that reach it (spec: "Snapshots"),
 * so taking or dropping a tree moves every count in it by one.
 */
export interface TreeParts {
  /** The image's name, for errors. */
  imageName: string;
  geometry: Geometry;
  mapper: ClusterMapper;
  l2Cache: TableCache;
  refcounts: RefcountStore;
}

/** The L2 tables an L1 table names: [L1 index, table offset] (empty entries skipped; offsets checked aligned). */
export function l2Tables(l1: L1Table): Array<[number, number]> {
  const tables: Array<[number, number]> = [];
  for (let index = 0; index < l1.entries; index++) {
    const offset = l1.l2Offset(index);
    if (offset !== 0) tables.push([index, offset]);
  }
  return tables;
}

/**
 * Moves the refcount of every L2 table and every cluster the tree reaches by `delta`. Returns the L2 tables whose
 * count reached zero (their clusters were released).
 */
export async function adjustTree(parts: TreeParts, l1: Uint8Array, delta: 1 | -1): Promise<number[]> {
  const { geometry, mapper, refcounts } = parts;
  const freed: number[] = [];
  for (const [l1Index, offset] of l2Tables(new L1Table(l1, 0, geometry.clusterSize, parts.imageName))) {
    const table = parts.l2Cache.peek(offset) ?? (await mapper.loadL2(offset, l1Index));
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    await refcounts.adjustEach(tableReferences(view, geometry, (at, index) => mapper.decodeEntry(at, index)), delta);
    if ((await refcounts.adjust(offset / geometry.clusterSize, delta)) === 0) freed.push(offset);
  }
  return freed;
}

/**
 * Sets the COPIED flags of the active tree to what the refcounts say (spec: set exactly when the refcount is 1;
 * never on compressed entries). L2 tables change in the cache (written back by the caller's flush); the L1 table
 * is rewritten in memory and returned for the caller to write. `allShared` clears every flag (a snapshot is about
 * to share the whole tree).
 */
export async function recomputeCopied(parts: TreeParts, l1: L1Table, allShared = false): Promise<Uint8Array> {
  const { geometry, mapper, refcounts, l2Cache } = parts;
  const bytes = l1.raw.slice();
  const l1View = new DataView(bytes.buffer);
  for (let l1Index = 0; l1Index < l1.entries; l1Index++) {
    const offset = l1.l2Offset(l1Index);
    if (offset === 0) continue;
    const tableShared = allShared || (await refcounts.get(offset / geometry.clusterSize)) !== 1;
    setL1EntryCopied(l1View, l1Index, !tableShared);
    const table = l2Cache.peek(offset) ?? (await mapper.loadL2(offset, l1Index));
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let changed = false;
    for (let index = 0; index < geometry.l2Entries; index++) {
      // An all-zero entry has no COPIED flag to change and names nothing (most of a sparse table).
      if (isAllZero(view, index * geometry.l2EntryBytes, geometry.l2EntryBytes)) continue;
      // Decoded even in a shared table: the walk checks every entry before the snapshot counts any of them.
      const entry = mapper.decodeEntry(view, index);
      let copied = false;
      if (!tableShared && !entry.compressed) {
        const clusters = referencedClusters(entry, geometry);
        if (clusters.length === 1) copied = (await refcounts.get(clusters[0]!)) === 1;
      }
      if (setL2EntryCopied(view, index, copied, geometry)) changed = true;
    }
    if (changed) l2Cache.markDirty(offset);
  }
  return bytes;
}

/** Whether the `bytes` bytes of a table at `at` (a whole L2 entry, standard or extended) are all zero. */
function isAllZero(view: DataView, at: number, bytes: number): boolean {
  for (let word = at; word < at + bytes; word += 4) if (view.getUint32(word) !== 0) return false;
  return true;
}
