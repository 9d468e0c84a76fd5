import type { BlockFile } from '@q/raw';
import type { ClusterMapper } from '@q/mapper';
import type { ImageMetadata } from './image-metadata.js';
import { growDisk } from './l1-growth.js';
import { preallocate, type Preallocation } from './preallocate.js';
import { shrinkDisk } from './shrink-disk.js';
import type { TrackedFile } from './tracked-file.js';
import type { WritableParts } from './writable-parts.js';

export interface ResizeImageParts {
  writer: WritableParts;
  file: TrackedFile;
  dataFile: BlockFile;
  metadata: ImageMetadata;
  mapper: ClusterMapper;
  /** Called under the metadata lock once the tables have the new size, before the bitmaps are stored at it. */
  setSize(size: number): void;
}

/**
 * Changes a writable image's disk from `old` to `target` bytes (a multiple of 512). Growing (l1-growth.ts): the new
 * space reads as zeros or from the backing file, or is allocated with `mode`. Shrinking (shrink-disk.ts) releases
 * every cluster past the new end, after the writes still in the caches are durable. Each persistent bitmap's
 * table is sized by the disk: in_use while the size changes, stored at the new size after.
 */
export async function resizeImage(parts: ResizeImageParts, old: number, target: number, mode: Preallocation): Promise<void> {
  const { writer, mapper } = parts;
  if (target < old) await writer.writePath.flush();
  await writer.lock.run(async () => {
    if (target !== old) await writer.bitmaps.beginResize();
    if (target < old) await shrinkDisk({ ...writer.resizeParts, oldSize: old, mapper, l2Writer: writer.l2Writer, l2Cache: writer.l2Cache }, target);
    else await growDisk(writer.resizeParts, target);
    parts.setSize(target);
    if (target !== old) await writer.bitmaps.finishResize(target);
    if (target > old && mode !== 'off') {
      const { geometry } = parts.metadata;
      const allocation = { file: parts.file, dataFile: parts.dataFile, geometry, mapper, l2Writer: writer.l2Writer, refcounts: writer.refcounts };
      await preallocate(allocation, target, mode, Math.ceil(old / geometry.clusterSize));
    }
  });
}
