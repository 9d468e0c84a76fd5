/**
 * Where a grown refcount table and the refcount blocks it needs go. The new structures live together in a fresh
 * area past everything allocated, and they must be counted themselves: the area needs refcount blocks for the
 * ranges it falls in, those blocks make the area larger, and a larger area may reach a new range or need a
 * larger table. The plan iterates until nothing changes (it converges: every quantity only grows).
 */
export interface GrowthInput {
  /** First cluster index known to be free with everything after it (past all allocations). */
  areaStart: number;
  /** The refcount range (block index) that needs a table entry. */
  neededRange: number;
  clusterSize: number;
  /** Clusters one refcount block covers. */
  blockEntries: number;
  /** Size of the current table, in clusters. */
  oldTableClusters: number;
  /** Whether the current table already has a block for a range. */
  hasBlock(range: number): boolean;
}

export interface GrowthPlan {
  /** New refcount blocks and the cluster each goes in, in range order. */
  blocks: Array<{ range: number; cluster: number }>;
  tableCluster: number;
  tableClusters: number;
  /** One past the last cluster of the area. */
  areaEnd: number;
}

const ENTRY_BYTES = 8;

export function planTableGrowth(input: GrowthInput): GrowthPlan {
  const { areaStart, neededRange, clusterSize, blockEntries, oldTableClusters } = input;
  // Grow by at least half again, so appending images do not grow the table at every new range.
  const minimumTable = oldTableClusters + Math.max(1, Math.ceil(oldTableClusters / 2));
  let blockCount = 0;
  let tableClusters = Math.max(minimumTable, clustersFor(neededRange + 1, clusterSize));
  for (;;) {
    const areaEnd = areaStart + blockCount + tableClusters;
    const ranges = new Set<number>([neededRange]);
    for (let range = Math.floor(areaStart / blockEntries); range <= Math.floor((areaEnd - 1) / blockEntries); range++) ranges.add(range);
    const missing = [...ranges].filter((range) => !input.hasBlock(range)).sort((a, b) => a - b);
    const neededTable = Math.max(tableClusters, clustersFor(Math.max(...ranges) + 1, clusterSize));
    if (missing.length === blockCount && neededTable === tableClusters) {
      return {
        blocks: missing.map((range, i) => ({ range, cluster: areaStart + i })),
        tableCluster: areaStart + blockCount,
        tableClusters,
        areaEnd,
      };
    }
    blockCount = Math.max(blockCount, missing.length);
    tableClusters = neededTable;
  }
}

function clustersFor(entries: number, clusterSize: number): number {
  return Math.ceil((entries * ENTRY_BYTES) / clusterSize);
}
