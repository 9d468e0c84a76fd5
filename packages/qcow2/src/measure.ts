/**
 * Sizes of qcow2 images before they exist (`qemu-img measure`). The model is the image a fully preallocating
 * writer lays out: one header cluster, an L2 table for every cluster of the disk (tables are whole clusters), an
 * L1 table of whole clusters, and refcount blocks and a refcount table that cover all of it, themselves included.
 * A sparse image needs the same metadata (QEMU counts it whole, overestimating a little) but only the data
 * clusters that hold something.
 */
export interface MeasureLayout {
  clusterBits: number;
  refcountOrder: number;
  extendedL2: boolean;
}

const L1_ENTRY_BYTES = 8;
const REFCOUNT_TABLE_ENTRY_BYTES = 8;

/**
 * Clusters of refcount blocks and refcount table needed to count `clusters` other clusters and themselves: the
 * smallest fixed point, found by iterating (each round only grows, so it ends).
 */
export function refcountMetadataClusters(clusters: number, layout: Pick<MeasureLayout, 'clusterBits' | 'refcountOrder'>): number {
  const clusterSize = 2 ** layout.clusterBits;
  const perBlock = (clusterSize * 8) / 2 ** layout.refcountOrder;
  const perTableCluster = clusterSize / REFCOUNT_TABLE_ENTRY_BYTES;
  let blocks = 0;
  let table = 0;
  for (;;) {
    const nextBlocks = Math.ceil((clusters + blocks + table) / perBlock);
    const nextTable = Math.ceil(nextBlocks / perTableCluster);
    if (nextBlocks === blocks && nextTable === table) return blocks + table;
    blocks = nextBlocks;
    table = nextTable;
  }
}

/** Bytes of metadata (header, L1, L2, refcounts) of a fully allocated image of `size` bytes. */
export function fullMetadataBytes(size: number, layout: MeasureLayout): number {
  const clusterSize = 2 ** layout.clusterBits;
  const dataClusters = Math.ceil(size / clusterSize);
  const l2Entries = clusterSize / (layout.extendedL2 ? 16 : 8);
  const l2Tables = Math.ceil(dataClusters / l2Entries);
  const l1Clusters = Math.ceil((l2Tables * L1_ENTRY_BYTES) / clusterSize);
  const counted = 1 + l2Tables + l1Clusters;
  return (counted + refcountMetadataClusters(counted + dataClusters, layout)) * clusterSize;
}

export interface Measurement {
  /** Bytes the new image needs for the data given (`required`). */
  required: number;
  /** Bytes it needs once every cluster is allocated (`fully-allocated`). */
  fullyAllocated: number;
}

/**
 * Measures a qcow2 image of `size` bytes that will hold `dataClusters` allocated clusters (every cluster with
 * preallocation falloc or full). Metadata preallocation changes nothing: the metadata is counted whole anyway.
 */
export function measureQcow2(size: number, dataClusters: number, layout: MeasureLayout): Measurement {
  const clusterSize = 2 ** layout.clusterBits;
  const aligned = Math.ceil(size / clusterSize) * clusterSize;
  const metadata = fullMetadataBytes(size, layout);
  return { required: metadata + Math.min(dataClusters * clusterSize, aligned), fullyAllocated: metadata + aligned };
}

/**
 * Bytes persistent bitmaps take in a qcow2 image with `clusterBits`: for each bitmap its data clusters (one bit
 * per granule) and its bitmap table (one 8-byte entry per data cluster, whole clusters), plus the bitmap
 * directory (one entry per bitmap: 24 bytes and the name, padded to 8), in whole clusters.
 */
export function bitmapsBytes(bitmaps: ReadonlyArray<{ granularityBits: number; nameBytes: number }>, size: number, clusterBits: number): number {
  const clusterSize = 2 ** clusterBits;
  let clusters = 0;
  let directory = 0;
  for (const bitmap of bitmaps) {
    const bits = Math.ceil(size / 2 ** bitmap.granularityBits);
    const dataClusters = Math.ceil(bits / (clusterSize * 8));
    clusters += dataClusters + Math.ceil((dataClusters * 8) / clusterSize);
    directory += Math.ceil((24 + bitmap.nameBytes) / 8) * 8;
  }
  return clusters * clusterSize + Math.ceil(directory / clusterSize) * clusterSize;
}
