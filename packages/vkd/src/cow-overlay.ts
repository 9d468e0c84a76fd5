import { mkdtempSync, rmSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQcow2, defaultCreateOptions } from '@q/qcow2';
import type { BlockDevice } from '@q/raw';
import { openNodeFile } from '@q/raw/node';

/**
 * Cow mode: the disk takes writes, the image file never changes. Writes go to a temporary qcow2 overlay whose
 * backing file is the image (the engine's own copy-on-write does the rest); the overlay's name is removed as soon
 * as it is open, so it vanishes with the process, however that ends.
 */
export async function openCowOverlay(
  base: { path: string; size: number; format: string },
  openOverlay: (overlayPath: string) => Promise<BlockDevice>,
): Promise<BlockDevice> {
  const backingFile = await realpath(base.path);
  const dir = mkdtempSync(join(tmpdir(), 'qcow-cow-'));
  try {
    const overlayPath = join(dir, 'overlay.qcow2');
    await createQcow2(await openNodeFile(overlayPath, { create: true, truncate: true }), {
      ...defaultCreateOptions(Math.ceil(base.size / 512) * 512),
      backingFile,
      backingFormat: base.format,
    });
    return await openOverlay(overlayPath);
  } finally {
    // Open files keep their data; the names go now.
    rmSync(dir, { recursive: true, force: true });
  }
}
