import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk, type BlockDevice } from '@q/raw';
import { openChain, type BackingOpener } from './backing-chain.js';

/** A fake layer store: each path names its backing file (or none). */
function layers(links: Record<string, string | undefined>) {
  const opened: string[] = [];
  const openLayer = async (path: string, _format: string | undefined, openBacking: BackingOpener): Promise<BlockDevice> => {
    if (!(path in links)) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
    opened.push(path);
    const below = links[path];
    if (below !== undefined) await openBacking(below, undefined);
    return RawDisk.open(new MemoryBlockFile(new Uint8Array(512), { name: path }));
  };
  return { openLayer, opened };
}

describe('openChain', () => {
  it('opens every layer, resolving names against the naming image', async () => {
    const store = layers({ '/d/top': 'mid', '/d/mid': '/e/base', '/e/base': undefined });
    await openChain('/d/top', undefined, store);
    expect(store.opened).toEqual(['/d/top', '/d/mid', '/e/base']);
  });

  it('refuses a chain that loops, naming the file', async () => {
    const store = layers({ '/d/a': 'b', '/d/b': 'a' });
    await expect(openChain('/d/a', undefined, store)).rejects.toMatchObject({
      code: 'E_BACKING_CHAIN',
      message: "backing chain loops: '/d/a' is already in the chain above it",
    });
  });

  it('refuses a chain deeper than the limit', async () => {
    const links: Record<string, string | undefined> = {};
    for (let i = 0; i < 10; i++) links[`/l${i}`] = `/l${i + 1}`;
    links['/l10'] = undefined;
    await expect(openChain('/l0', undefined, { ...layers(links), maxDepth: 5 })).rejects.toMatchObject({
      code: 'E_BACKING_CHAIN',
    });
    await expect(openChain('/l0', undefined, { ...layers(links), maxDepth: 10 })).resolves.toBeDefined();
  });
});
