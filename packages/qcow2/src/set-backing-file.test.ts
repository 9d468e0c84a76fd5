import { describe, expect, it } from 'vitest';
import { EXT_BACKING_FORMAT, EXT_FEATURE_NAMES } from '@q/format';
import { MemoryBlockFile } from '@q/raw';
import { readImageMetadata } from './image-metadata.js';
import { memoryImage } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

/** Rewrites of cluster 0 (rebase -u): the backing name and format change, every other extension stays. */
describe('Qcow2Image.setBackingFile', () => {
  async function reread(image: Qcow2Image): Promise<Awaited<ReturnType<typeof readImageMetadata>>> {
    const bytes = new Uint8Array(await image.file.size());
    await image.file.read(bytes, 0);
    return readImageMetadata(new MemoryBlockFile(bytes));
  }

  it('names a backing file with its format, renames it, then removes it; data and the feature table stay', async () => {
    const image = await memoryImage(1 << 20);
    await image.setBackingFile('old.qcow2', 'qcow2');
    expect((await reread(image)).extensions.backingFormat).toBe('qcow2');
    const data = new Uint8Array(4096).fill(0x5a);
    await image.write(data, 65536);

    await image.setBackingFile('a much longer name for the new backing file.raw', 'raw');
    let metadata = await reread(image);
    expect(metadata.backingFileName).toBe('a much longer name for the new backing file.raw');
    expect(metadata.extensions.backingFormat).toBe('raw');
    expect(metadata.extensions.all.map((e) => e.type)).toEqual([EXT_BACKING_FORMAT, EXT_FEATURE_NAMES]);

    await image.setBackingFile(undefined);
    metadata = await reread(image);
    expect(metadata.backingFileName).toBeUndefined();
    expect(metadata.header.backingFileOffset).toBe(0);
    expect(metadata.extensions.all.map((e) => e.type)).toEqual([EXT_FEATURE_NAMES]);

    const back = new Uint8Array(4096);
    await image.read(back, 65536);
    expect(back).toEqual(data);
    await image.close();
  });

  it('refuses a name that does not fit in the header cluster, leaving the header as it was', async () => {
    const image = await memoryImage(1 << 20, { clusterBits: 9 });
    await expect(image.setBackingFile('x'.repeat(600), 'raw')).rejects.toMatchObject({ code: 'E_INVALID' });
    expect((await reread(image)).backingFileName).toBeUndefined();
    await image.close();
  });
});
