import type { MapExtent } from '@q/mapper';
import { RefcountStore } from '@q/refcount';
import { DiskError, splitAtHostHoles, type BlockFile, type BlockStatus } from '@q/raw';
import type { ImageMetadata } from './image-metadata.js';

export interface BlockStatusParts {
  /** The image file (where refcounts live). */
  file: BlockFile;
  /** Where data clusters live: the image file, or the external data file. */
  dataFile: BlockFile;
  metadata: ImageMetadata;
  /** Runs `use` with the image's refcounts (a writable image's own store, under its lock); default: read them. */
  withRefcounts?<T>(use: (store: RefcountStore) => Promise<T>): Promise<T>;
}

/**
 * The BlockDevice view of an image's mapping (qemu-img map's model): data, zero and unallocated extents with their
 * host offsets, and, where qemu-img would look, the holes of the host file inside data clusters (zero and data).
 *
 * Where QEMU looks (observed with qemu-img 7.2 on ext4 and tmpfs, by punching holes into data clusters of images
 * of every size): only into images that look preallocated, decided once per open. An image does when its clusters
 * in use (refcount not 0, up to the end of the file) number at least max(floor(10a/9), a + 2), a being the file's
 * allocated bytes (`du`) in whole clusters. Anywhere else a cluster written in part, with holes the file system
 * kept, is data, as QEMU reports it; asking the file costs system calls on every NBD read, so images that do not
 * look preallocated are spared them.
 */
export class ImageBlockStatus {
  private readonly parts: BlockStatusParts;
  private preallocated: Promise<boolean> | undefined;

  constructor(parts: BlockStatusParts) {
    this.parts = parts;
  }

  /** The block status of mapped extents (as the mapper returned them for one range). */
  async of(extents: readonly MapExtent[]): Promise<BlockStatus[]> {
    const statuses = extents.map((extent) => toBlockStatus(extent, this.parts.dataFile.name));
    this.preallocated ??= looksPreallocated(this.parts).catch(() => false);
    if (!(await this.preallocated)) return statuses;
    return splitAtHostHoles(this.parts.dataFile, statuses, (part) => ({ ...part, hole: true }));
  }
}

function toBlockStatus(extent: MapExtent, hostFile: string): BlockStatus {
  const base = { offset: extent.guestOffset, length: extent.length };
  switch (extent.kind) {
    case 'data':
      return { ...base, kind: 'data', hostOffset: extent.hostOffset, hostFile };
    case 'compressed':
      return { ...base, kind: 'data', compressed: true };
    case 'zero':
      return extent.hostOffset === undefined ? { ...base, kind: 'zero' } : { ...base, kind: 'zero', hostOffset: extent.hostOffset, hostFile };
    case 'unallocated':
      return extent.hostOffset === undefined ? { ...base, kind: 'unallocated' } : { ...base, kind: 'unallocated', hostOffset: extent.hostOffset, hostFile };
  }
}

/** The rule of the class comment. A file that cannot say what it occupies does not look preallocated. */
async function looksPreallocated(parts: BlockStatusParts): Promise<boolean> {
  const { file, metadata } = parts;
  if (file.allocatedSize === undefined || parts.dataFile.runAt === undefined) return false;
  const { clusterSize } = metadata.geometry;
  const allocated = Math.floor((await file.allocatedSize()) / clusterSize);
  const threshold = Math.max(Math.floor((allocated * 10) / 9), allocated + 2);
  const fileClusters = Math.ceil((await file.size()) / clusterSize);
  // A file mostly allocated cannot hold that many clusters: no need to count them.
  if (fileClusters < threshold) return false;
  const count = (store: RefcountStore): Promise<number> => store.countInUse(fileClusters, threshold);
  return (await (parts.withRefcounts === undefined ? count(await readRefcounts(file, metadata)) : parts.withRefcounts(count))) >= threshold;
}

/** The refcounts of an image opened read-only, for counting (never changed, so never switched). */
function readRefcounts(file: BlockFile, metadata: ImageMetadata): Promise<RefcountStore> {
  const { header, geometry } = metadata;
  return RefcountStore.open({
    file,
    clusterBits: geometry.clusterBits,
    refcountOrder: header.refcountOrder,
    tableOffset: header.refcountTableOffset,
    tableClusters: header.refcountTableClusters,
    switchTable: () => Promise.reject(new DiskError('E_READ_ONLY', 'refcounts read for block status are not changed')),
  });
}
