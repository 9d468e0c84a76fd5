import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQcow2, defaultCreateOptions } from '@q/qcow2';
import type { BlockDevice, BlockStore } from '@q/raw';
import { nodeFileStore, openNodeFile } from '@q/raw/node';

/**
 * Cow mode: the disk takes writes, the image file never changes. Writes go to a temporary qcow2 overlay whose
 * backing file is the image (the engine's own copy-on-write does the rest); the overlay's name is removed as soon
 * as it is open, so it vanishes with the process, however that ends.
 */
export async function openCowOverlay(
  base: { path: string; size: number; format: string },
  store: BlockStore,
  openOverlay: (overlayPath: string, store: BlockStore) => Promise<BlockDevice>,
): Promise<BlockDevice> {
  // `base.path` is the image's identity in its store (a real path, a URL): the overlay names it as is.
  const backingFile = base.path;
  const dir = mkdtempSync(join(tmpdir(), 'qcow-cow-'));
  try {
    const overlayPath = join(dir, 'overlay.qcow2');
    await createQcow2(await openNodeFile(overlayPath, { create: true, truncate: true }), {
      ...defaultCreateOptions(Math.ceil(base.size / 512) * 512),
      backingFile,
      backingFormat: base.format,
    });
    return await openOverlay(overlayPath, overlayBeside(store, overlayPath));
  } finally {
    // Open files keep their data; the names go now.
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `store`, except that the overlay (a local temporary file, whatever the store) opens from the file system. */
function overlayBeside(store: BlockStore, overlayPath: string): BlockStore {
  const local = nodeFileStore();
  return {
    capabilities: store.capabilities,
    open: (name, options) => (name === overlayPath ? local.open(name, options) : store.open(name, options)),
    resolve: (base, name) => store.resolve(base, name),
    identify: (name) => (name === overlayPath ? Promise.resolve(name) : store.identify(name)),
    exists: (name) => (name === overlayPath ? Promise.resolve(true) : store.exists(name)),
  };
}
