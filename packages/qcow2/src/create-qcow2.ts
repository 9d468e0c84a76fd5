import type { BlockFile } from '@q/raw';
import { writeEmptyImage, type CreateOptions } from './create-image.js';
import type { Preallocation } from './preallocate.js';
import { Qcow2Image } from './qcow2-image.js';

/**
 * Creates a qcow2 image in `file` (which it takes over and closes): QEMU's layout, grown to `options.size`, then
 * preallocated if asked. An external data file, if named, is opened through `openDataFile` (created by the
 * caller) and sized to the disk.
 */
export async function createQcow2(
  file: BlockFile,
  options: CreateOptions & { preallocation?: Preallocation },
  io: { openDataFile?: (name: string, writable: boolean) => Promise<BlockFile> } = {},
): Promise<void> {
  try {
    await writeEmptyImage(file, options);
  } catch (error) {
    await file.close();
    throw error;
  }
  if (options.dataFile !== undefined && io.openDataFile !== undefined) {
    const dataFile = await io.openDataFile(options.dataFile, true);
    try {
      await dataFile.truncate(Math.ceil(options.size / 512) * 512);
    } finally {
      await dataFile.close();
    }
  }
  const image = await Qcow2Image.open(file, { writable: true, ignoreBacking: true, openDataFile: io.openDataFile }).catch(async (error: unknown) => {
    await file.close();
    throw error;
  });
  try {
    await image.resize(options.size);
    // A raw external data file is the disk itself: every cluster is mapped to it from the start (as QEMU does).
    const preallocation = options.preallocation === 'off' && options.dataFileRaw === true ? 'metadata' : options.preallocation;
    if (preallocation !== undefined && preallocation !== 'off') await image.preallocate(preallocation);
  } finally {
    await image.close();
  }
}
