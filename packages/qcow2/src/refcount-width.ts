import { encodeRefcountTable, maxRefcount, setRefcount } from '@q/format';
import { RefcountStore } from '@q/refcount';
import { DiskError, type BlockFile } from '@q/raw';
import { HeaderState } from './header-state.js';
import { readImageMetadata } from './image-metadata.js';

/**
 * Changes the refcount width of an image (qemu-img amend -o refcount_bits=N): every count is read through the
 * old structures, new refcount blocks and a new table of the new width are written past the end of the file, and
 * the header switches to them (order, table offset and size) in one write. Until that write the old structures
 * are untouched, so a crash leaves the old image plus unreferenced bytes past its end; after it the new ones are
 * complete. The old table and blocks are not counted in the new structures: once the header names the new
 * table nothing refers to them, and they are free space.
 *
 * Returns the new refcount store's layout. Runs with every other write flushed, under the metadata lock; the
 * caller must not use `refcounts` afterwards (reopen the image).
 */
export async function changeRefcountWidth(
  parts: { file: BlockFile; header: HeaderState; refcounts: RefcountStore; clusterSize: number },
  refcountOrder: number,
): Promise<void> {
  const { file, header, refcounts, clusterSize } = parts;
  const fileClusters = Math.ceil((await file.size()) / clusterSize);
  const counts = new Float64Array(fileClusters);
  const max = maxRefcount(refcountOrder);
  const old = refcounts.location;
  const oldStructures = new Set<number>();
  for (let i = 0; i < old.clusters; i++) oldStructures.add(old.offset / clusterSize + i);
  for (const offset of refcounts.blockOffsets) if (offset !== 0) oldStructures.add(offset / clusterSize);
  for (let cluster = 0; cluster < fileClusters; cluster++) {
    if (oldStructures.has(cluster)) continue;
    const count = await refcounts.get(cluster);
    if (count > max) {
      throw new DiskError('E_INVALID', `Cannot decrease refcount entry width to ${2 ** refcountOrder} bits: Cluster at offset 0x${(cluster * clusterSize).toString(16)} has a refcount of ${count}`);
    }
    counts[cluster] = count;
  }

  // The new structures start at the end of the file and count themselves: iterate to the fixed point.
  const perBlock = (clusterSize * 8) / 2 ** refcountOrder;
  const start = fileClusters;
  let tableClusters = 1;
  let blocks: number[] = [];
  for (;;) {
    const end = start + tableClusters + blocks.length;
    const ranges: number[] = [];
    for (let range = 0; range * perBlock < end; range++) {
      const first = range * perBlock;
      let used = first + perBlock > start;
      for (let cluster = first; !used && cluster < Math.min(first + perBlock, fileClusters); cluster++) used = counts[cluster]! !== 0;
      if (used) ranges.push(range);
    }
    const neededTable = Math.max(1, Math.ceil((((ranges.at(-1) ?? 0) + 1) * 8) / clusterSize));
    if (ranges.length === blocks.length && neededTable === tableClusters) break;
    blocks = ranges;
    tableClusters = Math.max(tableClusters, neededTable);
  }
  const tableCluster = start;
  const blockCluster = (index: number): number => start + tableClusters + index;
  const total = start + tableClusters + blocks.length;

  const entries: number[] = [];
  for (let index = 0; index < blocks.length; index++) {
    const range = blocks[index]!;
    const bytes = new Uint8Array(clusterSize);
    for (let i = 0; i < perBlock; i++) {
      const cluster = range * perBlock + i;
      const count = cluster < fileClusters ? counts[cluster]! : cluster < total ? 1 : 0;
      if (count !== 0) setRefcount(bytes, i, refcountOrder, count);
    }
    while (entries.length < range) entries.push(0);
    entries[range] = blockCluster(index) * clusterSize;
    await file.write(bytes, blockCluster(index) * clusterSize);
  }
  await file.write(encodeRefcountTable(entries, clusterSize, tableClusters), tableCluster * clusterSize);
  await file.flush();
  // The switch: order, table offset and table size change together in one write of the fixed header fields.
  header.header.refcountOrder = refcountOrder;
  header.header.refcountTableOffset = tableCluster * clusterSize;
  header.header.refcountTableClusters = tableClusters;
  await header.write();
}

/**
 * `changeRefcountWidth` on an image file that no engine has open (the refcount store of an open image would be
 * stale after the switch): reads the metadata, changes the width, leaves the file closed by the caller.
 */
export async function rewriteRefcountWidth(file: BlockFile, refcountOrder: number): Promise<void> {
  const metadata = await readImageMetadata(file);
  const { header, geometry } = metadata;
  if (header.refcountOrder === refcountOrder) return;
  const state = new HeaderState(header, file, { extensions: metadata.extensions.all, backingFileName: metadata.backingFileName, clusterSize: geometry.clusterSize });
  const refcounts = await RefcountStore.open({
    file,
    clusterBits: geometry.clusterBits,
    refcountOrder: header.refcountOrder,
    tableOffset: header.refcountTableOffset,
    tableClusters: header.refcountTableClusters,
    switchTable: () => Promise.reject(new Error('the refcount table does not grow while its width changes')),
  });
  await changeRefcountWidth({ file, header: state, refcounts, clusterSize: geometry.clusterSize }, refcountOrder);
}
