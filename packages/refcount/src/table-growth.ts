/**
 * Where new refcount structures go: refcount blocks for ranges that have none, and, when a range lies past the end
 * of the refcount table, a larger table. They all live together in a fresh area past everything in use, and they
 * must be counted themselves: the area needs blocks for the ranges it falls in, those blocks make the area
 * larger, and a larger area may reach a new range or need a larger table. The plan iterates until nothing changes
 * (it converges: every quantity only grows).
 */
export interface StructureInput {
  /** First cluster index known to be free with everything after it (past all allocations). */
  areaStart: number;
  /** Ranges (block indexes) that need a refcount block. */
  neededRanges: readonly number[];
  clusterSize: number;
  /** Clusters one refcount block covers. */
  blockEntries: number;
  /** Size of the current table, in clusters. */
  tableClusters: number;
  /** Whether the current table already has a block for a range. */
  hasBlock(range: number): boolean;
}

export interface StructurePlan {
  /** New refcount blocks and the cluster each goes in, in range order. */
  blocks: Array<{ range: number; cluster: number }>;
  /** A new, larger refcount table, when some range is past the end of the current one. */
  table: { cluster: number; clusters: number } | undefined;
  /** One past the last cluster of the area. */
  areaEnd: number;
}

const ENTRY_BYTES = 8;

export function planRefcountStructures(input: StructureInput): StructurePlan {
  const { areaStart, clusterSize, blockEntries, tableClusters } = input;
  const tableEntries = (tableClusters * clusterSize) / ENTRY_BYTES;
  // A table grows by at least half again, so appending images do not grow it at every new range.
  const minimumTable = tableClusters + Math.max(1, Math.ceil(tableClusters / 2));
  let blockCount = 0;
  let newTableClusters = 0;
  for (;;) {
    const areaEnd = areaStart + blockCount + newTableClusters;
    const ranges = new Set<number>(input.neededRanges);
    if (areaEnd > areaStart) {
      for (let range = Math.floor(areaStart / blockEntries); range <= Math.floor((areaEnd - 1) / blockEntries); range++) ranges.add(range);
    }
    const missing = [...ranges].filter((range) => range >= tableEntries || !input.hasBlock(range)).sort((a, b) => a - b);
    const maxRange = Math.max(-1, ...ranges);
    const neededTable = maxRange >= tableEntries ? Math.max(minimumTable, newTableClusters, clustersFor(maxRange + 1, clusterSize)) : 0;
    if (missing.length === blockCount && neededTable === newTableClusters) {
      return {
        blocks: missing.map((range, i) => ({ range, cluster: areaStart + i })),
        table: neededTable === 0 ? undefined : { cluster: areaStart + blockCount, clusters: neededTable },
        areaEnd,
      };
    }
    blockCount = Math.max(blockCount, missing.length);
    newTableClusters = Math.max(newTableClusters, neededTable);
  }
}

function clustersFor(entries: number, clusterSize: number): number {
  return Math.ceil((entries * ENTRY_BYTES) / clusterSize);
}
