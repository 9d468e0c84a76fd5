import { MemoryBlockFile, type BlockFile } from '@q/raw';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { Qcow2Image } from './qcow2-image.js';

/**
 * A fresh qcow2 image in memory, opened writable: for tests of the engine that need no file system and no
 * oracle (the interop suites check the bytes against qemu-img).
 */
export async function memoryImage(size: number, options: Partial<CreateOptions> = {}): Promise<Qcow2Image> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'memory.qcow2' });
  // createQcow2 closes the file it is given: hand it one whose close keeps the bytes.
  const keepOpen = unclosable(file);
  await createQcow2(keepOpen, { ...defaultCreateOptions(size), ...options });
  // No codecs: the engine's defaults load the portable decoders only if a compressed cluster is read.
  return Qcow2Image.open(file, { name: 'memory.qcow2', writable: true });
}

/** `file` behind a close that does nothing: for createQcow2 (which closes what it is given) over bytes kept open. */
export function unclosable(file: BlockFile): BlockFile {
  return {
    name: file.name,
    capabilities: file.capabilities,
    read: (dst, offset) => file.read(dst, offset),
    write: (src, offset) => file.write(src, offset),
    flush: () => file.flush(),
    size: () => file.size(),
    truncate: (length) => file.truncate(length),
    close: async () => undefined,
  };
}
