import { TableCache } from '@q/cache';
import { AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, type Geometry } from '@q/format';
import { ACTIVE_L2_TABLE, ClusterMapper, L1Table, L2Writer, type MetadataRegions } from '@q/mapper';
import { RefcountStore } from '@q/refcount';
import { readExact, type BlockDevice, type BlockFile } from '@q/raw';
import { AsyncLock } from './async-lock.js';
import { DeallocationQueue } from './deallocation-queue.js';
import { HeaderState } from './header-state.js';
import { PersistentBitmaps } from './persistent-bitmaps.js';
import type { ResizeParts } from './l1-growth.js';
import type { ImageMetadata } from './image-metadata.js';
import type { TrackedFile } from './tracked-file.js';
import { WritePath } from './write-path.js';
import { ZeroPath } from './zero-path.js';

export interface MappingParts {
  l1: L1Table;
  l2Cache: TableCache;
  mapper: ClusterMapper;
  /** Installs what must run before any L2 table is written back (the write path's refcount sync). */
  setWriteBackSync(sync: () => Promise<void>): void;
}

/** The read side of the mapping: the L1 table, a cache of L2 tables and the mapper over them. */
export function mappingParts(
  file: BlockFile,
  metadata: ImageMetadata,
  l1Bytes: Uint8Array,
  l1Offset: number,
  options: { name: string; l2CacheBytes: number },
): MappingParts {
  const { geometry } = metadata;
  const l1 = new L1Table(l1Bytes, l1Offset, geometry.clusterSize, options.name);
  let syncBeforeWriteBack: () => Promise<void> = async () => undefined;
  const l2Cache = new TableCache({
    budgetBytes: options.l2CacheBytes,
    tableBytes: geometry.clusterSize,
    load: async (offset) => {
      const table = new Uint8Array(geometry.clusterSize);
      await readExact(file, table, offset, 'L2 table');
      return table;
    },
    writeBack: (offset, table) => file.write(table, offset),
    beforeWriteBack: () => syncBeforeWriteBack(),
  });
  const mapper = new ClusterMapper({ geometry, l1, l2Cache, imageFileSize: metadata.fileSize, metadata: metadata.regions, name: options.name });
  // L2 tables never reach the file before the refcounts they need: the write path installs that sync here.
  return { l1, l2Cache, mapper, setWriteBackSync: (sync) => (syncBeforeWriteBack = sync) };
}

/** What a writable image adds: header changes, refcounts, the L2 writer and the write path. */
export interface WritableParts {
  header: HeaderState;
  refcounts: RefcountStore;
  writePath: WritePath;
  zeroPath: ZeroPath;
  l2Writer: L2Writer;
  lock: AsyncLock;
  lazyRefcounts: boolean;
  resizeParts: ResizeParts;
  l2Cache: TableCache;
  /** Freed clusters waiting for their hole to be punched (at flush). */
  deallocations: DeallocationQueue;
  /** The persistent bitmaps this writer keeps and manages. */
  bitmaps: PersistentBitmaps;
}

export async function writableParts(options: {
  file: TrackedFile;
  dataFile: TrackedFile;
  metadata: ImageMetadata;
  mapping: MappingParts;
  backing: BlockDevice | undefined;
  readGuest(dst: Uint8Array, offset: number): Promise<void>;
  virtualSize(): number;
  refcountCacheBytes: number;
}): Promise<WritableParts> {
  const { file, metadata, mapping } = options;
  const { geometry } = metadata;
  const regions = metadata.regions;
  const header = new HeaderState(metadata.header, file, {
    extensions: metadata.extensions.all,
    backingFileName: metadata.backingFileName,
    clusterSize: metadata.geometry.clusterSize,
  });
  const deallocations = new DeallocationQueue(file, geometry.clusterSize);
  const refcounts = await RefcountStore.open({
    file,
    clusterBits: geometry.clusterBits,
    refcountOrder: metadata.header.refcountOrder,
    tableOffset: metadata.header.refcountTableOffset,
    tableClusters: metadata.header.refcountTableClusters,
    cacheBytes: options.refcountCacheBytes,
    switchTable: (offset, clusters) => header.switchRefcountTable(offset, clusters),
    onMetadataChange: ({ added, removed }) => {
      for (const [offset, clusters] of removed) regions.remove(offset, clusters * geometry.clusterSize);
      for (const [offset, clusters] of added) regions.add(offset, clusters * geometry.clusterSize, 'refcount metadata');
    },
    listener: deallocations,
  });
  registerWritableMetadata(regions, metadata, refcounts, mapping.l1, geometry);
  const lock = new AsyncLock();
  const lazyRefcounts = (metadata.header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n;
  let writePath: WritePath | undefined;
  const syncRefcounts = (): Promise<void> => writePath!.syncRefcounts();
  const l2Writer = new L2Writer({
    file,
    geometry,
    l1: mapping.l1,
    l2Cache: mapping.l2Cache,
    refcounts,
    metadata: regions,
    mapper: mapping.mapper,
    syncRefcounts,
  });
  writePath = new WritePath({
    file,
    dataFile: options.dataFile,
    geometry,
    header,
    mapper: mapping.mapper,
    l2Writer,
    l2Cache: mapping.l2Cache,
    refcounts,
    metadata: regions,
    backing: options.backing,
    readGuest: options.readGuest,
    virtualSize: options.virtualSize,
    lock,
    lazyRefcounts,
    dataFileRaw: (metadata.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n,
    deallocations,
  });
  mapping.setWriteBackSync(() => writePath!.syncBeforeTableWriteBack());
  const resizeParts: ResizeParts = { file, geometry, header, l1: mapping.l1, refcounts, metadata: regions, syncRefcounts };
  const zeroPath = new ZeroPath(writePath);
  const bitmaps = await PersistentBitmaps.load({ file, header, refcounts, metadata, clusterSize: geometry.clusterSize, syncRefcounts });
  return { header, refcounts, writePath, zeroPath, l2Writer, lock, lazyRefcounts, resizeParts, l2Cache: mapping.l2Cache, deallocations, bitmaps };
}

/** A writable image also guards refcount blocks, active L2 tables and snapshot L1 tables against overwrites. */
function registerWritableMetadata(regions: MetadataRegions, metadata: ImageMetadata, refcounts: RefcountStore, l1: L1Table, geometry: Geometry): void {
  for (const offset of refcounts.blockOffsets) if (offset !== 0) regions.add(offset, geometry.clusterSize, 'refcount block');
  for (let index = 0; index < l1.entries; index++) {
    const offset = l1.l2Offset(index);
    if (offset !== 0) regions.add(offset, geometry.clusterSize, ACTIVE_L2_TABLE);
  }
  for (const snapshot of metadata.snapshots) {
    if (snapshot.l1Size > 0) regions.add(snapshot.l1TableOffset, snapshot.l1Size * 8, `L1 table of snapshot '${snapshot.name}'`);
  }
}
