import { RefcountStore } from '@q/refcount';
import { MemoryBlockFile } from '@q/raw';
import { readImageMetadata, type ImageMetadata } from './image-metadata.js';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { unclosable } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

/** A fresh image in a memory file the test keeps, so it can read the bytes after close. */
export async function imageInMemory(size: number, options: Partial<CreateOptions> = {}): Promise<{ file: MemoryBlockFile; open(): Promise<Qcow2Image> }> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'memory.qcow2' });
  const keepOpen = unclosable(file);
  await createQcow2(keepOpen, { ...defaultCreateOptions(size), ...options });
  const reopen = (): Promise<Qcow2Image> => {
    return Qcow2Image.open({ ...keepOpen }, { name: 'memory.qcow2', writable: true });
  };
  return { file, open: reopen };
}


/** The refcounts of the image in `file`, read through a RefcountStore that refuses changes, and its geometry. */
export async function refcountsInMemory(file: MemoryBlockFile): Promise<{ store: RefcountStore; metadata: ImageMetadata }> {
  const metadata = await readImageMetadata(file);
  const { header, geometry } = metadata;
  const store = await RefcountStore.open({
    file,
    clusterBits: geometry.clusterBits,
    refcountOrder: header.refcountOrder,
    tableOffset: header.refcountTableOffset,
    tableClusters: header.refcountTableClusters,
    switchTable: () => Promise.reject(new Error('read only')),
  });
  return { store, metadata };
}
