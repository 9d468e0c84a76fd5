import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, routeStore } from '@q/raw';
import { expectSameBytes } from '@q/raw/conformance';
import { openImage } from '@q/qcow2';
import { httpStore } from './http-store.js';
import { startNginx, type NginxServer } from './nginx-server.js';
import { deviceBytes, IMAGES, makeImages, qemuGuestBytes, run } from './qemu-images.js';

/**
 * Images made by qemu-img, served by nginx, opened with openImage through httpStore: every guest byte must be
 * what `qemu-img convert -O raw` gives for the local file. Chains resolve their relative backing names against
 * the image's URL; a local overlay reads through to a backing file on the server.
 */
const root = mkdtempSync(join(tmpdir(), 'q-http-store-'));
const local = mkdtempSync(join(tmpdir(), 'q-http-local-'));
let server: NginxServer;
const expected = new Map<string, Uint8Array>();

beforeAll(async () => {
  mkdirSync(join(root, 'images'));
  await makeImages(join(root, 'images'));
  for (const image of IMAGES) expected.set(image, await qemuGuestBytes(join(root, 'images'), image, join(local, `${image}.raw`)));
  server = await startNginx({ root });
});

afterAll(async () => {
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
});

describe('httpStore with openImage', () => {
  for (const image of IMAGES) {
    it(`${image}: every guest byte matches qemu-img`, async () => {
      const device = await openImage(`${server.url}images/${image}`, { store: httpStore() });
      expectSameBytes(await deviceBytes(device), expected.get(image)!, image);
      await device.close();
    });
  }

  it('opens the chain top <- mid <- base by relative names resolved against the URL', async () => {
    const requested: string[] = [];
    const store = httpStore({ fetch: (url, init) => (requested.push(url), globalThis.fetch(url, init)) });
    const device = await openImage(`${server.url}images/top.qcow2`, { store });
    expect(new Set(requested)).toEqual(new Set(['top', 'mid', 'base'].map((name) => `${server.url}images/${name}.qcow2`)));
    await device.close();
  });

  it('reads a local overlay (in a MemoryStore) through to its backing file on the server', async () => {
    // Made with a local backing file so qemu-io can write and qemu-img can answer, then pointed at the server.
    copyFileSync(join(root, 'images', 'plain.qcow2'), join(local, 'plain.qcow2'));
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'plain.qcow2', '-F', 'qcow2', 'overlay.qcow2'], local);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 512k 1M', 'overlay.qcow2'], local);
    const want = await qemuGuestBytes(local, 'overlay.qcow2');
    await run('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-b', `${server.url}images/plain.qcow2`, '-F', 'qcow2', 'overlay.qcow2'], local);
    const memory = new MemoryStore();
    memory.put('vm/overlay.qcow2', new Uint8Array(readFileSync(join(local, 'overlay.qcow2'))));
    const http = httpStore();
    const device = await openImage('vm/overlay.qcow2', { store: routeStore({ http, https: http }, memory) });
    expectSameBytes(await deviceBytes(device), want, 'overlay over http');
    await device.close();
  });

  it('says E_NOT_FOUND for a missing image, and exists() agrees', async () => {
    const store = httpStore();
    await expect(openImage(`${server.url}images/nothing.qcow2`, { store })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await store.exists(`${server.url}images/nothing.qcow2`)).toBe(false);
    expect(await store.exists(`${server.url}images/plain.qcow2`)).toBe(true);
  });

  it('refuses to open for writing, ignores locks (the server owns the file), and cannot be opened writable by the engine', async () => {
    const store = httpStore();
    const url = `${server.url}images/plain.qcow2`;
    expect(store.capabilities).toEqual({ write: false, lock: false, deallocate: false });
    await expect(store.open(url, { writable: true })).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    await expect(store.open(url, { create: true })).rejects.toMatchObject({ code: 'E_READ_ONLY' });
    const locked = await store.open(url, { lock: { take: 1, unshare: 0 } });
    expect(locked.lock).toBeUndefined();
    await locked.close();
    await expect(openImage(url, { store, writable: true })).rejects.toMatchObject({ code: 'E_READ_ONLY' });
  });
});

describe('httpStore names', () => {
  const store = httpStore();

  it('resolves a relative name against the URL of the image that records it', () => {
    expect(store.resolve('http://h.test/a/b/top.qcow2', 'mid.qcow2')).toBe('http://h.test/a/b/mid.qcow2');
    expect(store.resolve('http://h.test/a/b/top.qcow2', '../base.qcow2')).toBe('http://h.test/a/base.qcow2');
    expect(store.resolve('http://h.test/a/top.qcow2', '/root.qcow2')).toBe('http://h.test/root.qcow2');
    expect(store.resolve('https://h.test/a/top.qcow2', 'https://other.test/x.qcow2')).toBe('https://other.test/x.qcow2');
    expect(store.resolve('http://h.test/a/top.qcow2?sig=1', 'mid%20x.qcow2')).toBe('http://h.test/a/mid%20x.qcow2');
  });

  it('identifies a file by its canonical URL, without a fragment', async () => {
    expect(await store.identify('HTTP://H.Test:80/a/./b/../top.qcow2#x')).toBe('http://h.test/a/top.qcow2');
    expect(await store.identify('https://h.test:443/top.qcow2')).toBe('https://h.test/top.qcow2');
    await expect(store.identify('nbd://h.test/x')).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });
});
