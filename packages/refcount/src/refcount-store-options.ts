import type { BlockFile } from '@q/raw';

/** What a RefcountStore is opened with: the image file, its geometry, where its refcount table is, and who to tell. */
export interface RefcountStoreOptions {
  file: BlockFile;
  clusterBits: number;
  refcountOrder: number;
  tableOffset: number;
  tableClusters: number;
  /** Bytes of refcount blocks to cache. */
  cacheBytes?: number;
  /**
   * Points the header at a new refcount table in one write and makes it durable. Called during table growth,
   * after the new table and its blocks are on disk.
   */
  switchTable(offset: number, clusters: number): Promise<void>;
  /** Told when refcount metadata clusters appear or go (for the engine's overlap checks). */
  onMetadataChange?(change: { added: Array<[start: number, clusters: number]>; removed: Array<[start: number, clusters: number]> }): void;
  /** Told when a cluster becomes free or is taken again (for giving freed space back to the file system). */
  listener?: RefcountListener;
}

/**
 * Refcount transitions a writer may act on. Both are called synchronously, in the order the counts change (in
 * memory: the refcount block reaches the file later), so a cluster reported free and then claimed is never
 * mistaken for a free one.
 */
export interface RefcountListener {
  /** `cluster`'s refcount went from nonzero to 0. */
  freed(cluster: number): void;
  /** `cluster`'s refcount went from 0 to nonzero (allocation, or a refcount structure placed there). */
  claimed(cluster: number): void;
}
