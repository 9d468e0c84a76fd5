import { describe, expect, it } from 'vitest';
import { BlobStore } from './blob-store.js';
import { isDiskError } from './errors.js';
import { MemoryStore } from './memory-store.js';
import { routeStore } from './store-router.js';
import { hasProtocol, protocolOf, resolveFileName } from './store-names.js';

describe('store names', () => {
  it('tells protocols from file names as QEMU does', () => {
    expect(protocolOf('https://host/a.qcow2')).toBe('https');
    expect(protocolOf('nbd+unix:///x?socket=/s')).toBe('nbd+unix');
    expect(protocolOf('NBD://h/x')).toBe('nbd');
    expect(hasProtocol('dir/a:b')).toBe(false);
    expect(hasProtocol('my file:1')).toBe(false);
    expect(hasProtocol('/abs/path')).toBe(false);
  });

  it('resolves relative names against the directory of the image that records them', () => {
    expect(resolveFileName('/img/top.qcow2', 'base.qcow2')).toBe('/img/base.qcow2');
    expect(resolveFileName('top.qcow2', 'base.qcow2')).toBe('base.qcow2');
    expect(resolveFileName('/img/top.qcow2', '/other/base')).toBe('/other/base');
    expect(resolveFileName('/img/top.qcow2', 'https://h/b')).toBe('https://h/b');
  });
});

describe('routeStore', () => {
  const local = new MemoryStore();
  local.put('/img/top', new Uint8Array([1, 2, 3]));
  const web = new BlobStore([['https://h/dir/base', new Blob([new Uint8Array([9, 8])])]]);
  web.resolve = (base, name) => new URL(name, base).href;
  const store = routeStore({ https: web }, local);

  it('opens each name through the store of its protocol', async () => {
    const top = await store.open('/img/top');
    const base = await store.open('https://h/dir/base');
    expect(await top.size()).toBe(3);
    expect(await base.size()).toBe(2);
    expect(await store.exists('https://h/dir/base')).toBe(true);
    expect(await store.exists('nbd://h/x')).toBe(false);
  });

  it('resolves a relative name through the store of the image that records it', () => {
    expect(store.resolve('https://h/dir/top', 'base')).toBe('https://h/dir/base');
    expect(store.resolve('/img/top', 'base')).toBe('/img/base');
    expect(store.resolve('/img/top', 'https://h/dir/base')).toBe('https://h/dir/base');
  });

  it('refuses a protocol it has no route for, naming it', async () => {
    const error = await store.open('nbd://h/x').catch((e: unknown) => e);
    expect(isDiskError(error) && error.code).toBe('E_UNSUPPORTED');
    expect((error as Error).message).toBe("Unknown protocol 'nbd'");
  });

  it('says what the stores it joins can do', () => {
    expect(store.capabilities).toEqual({ write: true, lock: false, deallocate: true });
  });
});

describe('MemoryStore', () => {
  it('shares bytes between opens, keeps read-only handles read-only, creates and truncates on request', async () => {
    const store = new MemoryStore();
    const writer = await store.open('a', { create: true });
    await writer.write(new Uint8Array([5, 6]), 10);
    const reader = await store.open('a');
    const got = new Uint8Array(2);
    expect(await reader.read(got, 10)).toBe(2);
    expect([...got]).toEqual([5, 6]);
    await expect(reader.write(got, 0)).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    await reader.close();
    expect(await writer.size()).toBe(12);
    await (await store.open('a', { writable: true, truncate: true })).close();
    expect(store.get('a')?.length).toBe(0);
    await expect(store.open('b')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // Nobody else can open a memory file: there is nothing to lock against.
    await (await store.open('a', { lock: { take: 1, unshare: 0 } })).close();
  });
});

describe('BlobStore', () => {
  it('reads a Blob by slices and refuses writes', async () => {
    const bytes = new Uint8Array(10000).map((_, i) => i & 0xff);
    const store = new BlobStore().add(new Blob([bytes]), 'disk.img');
    const file = await store.open('disk.img');
    const got = new Uint8Array(100);
    expect(await file.read(got, 9950)).toBe(50);
    expect(got[0]).toBe(9950 & 0xff);
    expect(await file.read(got, 20000)).toBe(0);
    await expect(store.open('disk.img', { writable: true })).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    await expect(file.write(got, 0)).rejects.toMatchObject({ code: 'E_READ_ONLY' });
  });
});
