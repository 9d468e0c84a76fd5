import { MemoryBlockFile } from '@q/raw';
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

