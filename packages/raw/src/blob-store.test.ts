import { describe, expect, it } from 'vitest';
import { BlobBlockFile, BlobStore } from './blob-store.js';
import { describeReadOnlyConformance } from './conformance.js';

describeReadOnlyConformance('BlobBlockFile', {
  open: async (bytes) => new BlobBlockFile(new Blob([bytes.slice()]), 'blob'),
});

describe('BlobStore', () => {
  it('opens its Blobs read-only, refuses writers by code, and ignores locks (no other process can open a Blob)', async () => {
    const store = new BlobStore().add(new Blob([new Uint8Array([1, 2, 3])]), 'a.img');
    expect(await store.exists('a.img')).toBe(true);
    expect(await store.exists('b.img')).toBe(false);
    const file = await store.open('a.img');
    expect(await file.size()).toBe(3);
    await file.close();
    await expect(store.open('a.img', { writable: true })).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    await (await store.open('a.img', { lock: { take: 1, unshare: 0 } })).close();
    await expect(store.open('b.img')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});
