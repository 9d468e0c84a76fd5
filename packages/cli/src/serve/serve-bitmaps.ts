import type { BlockDevice } from '@q/raw';
import { cliStore } from '../cli-store.js';
import { ExitError } from '../usage-error.js';
import { MemoryDirtyBitmap } from './memory-dirty-bitmap.js';
import { readStoredBitmap } from './stored-bitmap.js';

/** The bitmaps `qcow serve -B` exports, and those of them that this session's writes must mark. */
export interface ServedBitmaps {
  /** In the order qemu-nbd lists them: the last `-B` first. */
  sources: MemoryDirtyBitmap[];
  /** The enabled bitmaps of the image clients write to (never one below a --cow overlay or in a backing file). */
  marked: MemoryDirtyBitmap[];
}

/**
 * Finds each `-B NAME` as qemu-nbd does: in the served image, else down its backing chain (a bitmap of a backing
 * file is exported as it is stored, since writes never reach that file). With `--cow` the top layer is the private
 * overlay, which has no bitmaps; the image under it is searched next, and its bitmaps are not marked either, as
 * with qemu-nbd `-s`. A name found nowhere is qemu-nbd's "Bitmap 'NAME' is not found" (exit 1).
 */
export async function loadServedBitmaps(device: BlockDevice, imagePath: string, names: readonly string[], cow: boolean): Promise<ServedBitmaps> {
  const layers = chainPaths(device, imagePath, cow);
  const sources: MemoryDirtyBitmap[] = [];
  const marked: MemoryDirtyBitmap[] = [];
  for (const name of [...names].reverse()) {
    const found = await findBitmap(layers, name, device.size);
    sources.push(found.bitmap);
    if (found.layer === 0 && !cow && !device.readOnly && found.bitmap.enabled) marked.push(found.bitmap);
  }
  return { sources, marked };
}

/** The files of the chain's qcow2 layers, top first; the top is the path the user gave (its name may be FILE@SNAP). */
function chainPaths(device: BlockDevice, imagePath: string, cow: boolean): { path: string; layer: number }[] {
  const paths: { path: string; layer: number }[] = [];
  let layer = 0;
  for (let at: BlockDevice | undefined = device; at !== undefined; at = at.backing, layer++) {
    if (cow && layer === 0) continue;
    const path = layer === (cow ? 1 : 0) ? imagePath : at.name;
    if (at.format === 'qcow2') paths.push({ path, layer });
  }
  return paths;
}

async function findBitmap(layers: readonly { path: string; layer: number }[], name: string, size: number): Promise<{ bitmap: MemoryDirtyBitmap; layer: number }> {
  for (const { path, layer } of layers) {
    // Through the CLI's store, so a bitmap of an image named by URL is found as the image itself was.
    const file = await cliStore().open(path);
    try {
      const stored = await readStoredBitmap(file, name);
      if (stored !== undefined) return { bitmap: new MemoryDirtyBitmap(stored, size), layer };
    } finally {
      await file.close();
    }
  }
  throw new ExitError(`Bitmap '${name}' is not found`, 1);
}
