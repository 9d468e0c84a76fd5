import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestSha256 } from './test-guest-sha256.js';
import { BlobStore, MemoryStore, routeStore } from '@q/raw';
import { openImage } from './open-image.js';

/**
 * openImage over stores that are not the file system: the committed fixtures (chains and an external data file
 * included) from a MemoryStore and a BlobStore, as a browser would open them. Answers come from qemu-img.
 */
const dir = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');
const names = readdirSync(dir).filter((name) => !name.endsWith('.json'));
const answers = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as { image: string; guestSha256: string });

describe('openImage', () => {
  const memory = new MemoryStore();
  const blobs = new BlobStore();
  for (const name of names) {
    const bytes = new Uint8Array(readFileSync(join(dir, name)));
    memory.put(`/images/${name}`, bytes);
    blobs.add(new Blob([bytes]), name);
  }

  for (const answer of answers) {
    it(`${answer.image}: chain and data file from a MemoryStore match qemu-img`, async () => {
      const device = await openImage(`/images/${answer.image}`, { store: memory });
      expect(await guestSha256(device)).toBe(answer.guestSha256);
      await device.close();
    });

    it(`${answer.image}: from a BlobStore (default codecs) matches qemu-img`, async () => {
      const device = await openImage(answer.image, { store: blobs });
      expect(await guestSha256(device)).toBe(answer.guestSha256);
      await device.close();
    });
  }

  it('opens a backing file in another store by its protocol', async () => {
    const web = new MemoryStore();
    web.put('https://example.test/d/chain-mid.qcow2', memory.get('/images/chain-mid.qcow2')!);
    web.put('https://example.test/d/chain-base.raw', memory.get('/images/chain-base.raw')!);
    web.resolve = (base, name) => new URL(name, base).href;
    const local = new MemoryStore();
    // The image is on the web: the relative name of its backing file resolves against its URL, so the whole chain
    // comes from there, through the route for https.
    const top = await openImage('https://example.test/d/chain-mid.qcow2', { store: routeStore({ https: web }, local) });
    const answer = answers.find((a) => a.image === 'chain-mid.qcow2')!;
    expect(await guestSha256(top)).toBe(answer.guestSha256);
    await top.close();
  });

  it('writes through a writable store and reads back', async () => {
    const store = new MemoryStore();
    store.put('w.qcow2', memory.get('/images/v3-64k.qcow2')!.slice());
    const device = await openImage('w.qcow2', { store, writable: true });
    await device.write(new Uint8Array(4096).fill(7), 65536);
    await device.close();
    const again = await openImage('w.qcow2', { store });
    const got = new Uint8Array(4096);
    await again.read(got, 65536);
    expect(got.every((byte) => byte === 7)).toBe(true);
    await again.close();
  });

  it('says which file of a chain is missing', async () => {
    const store = new MemoryStore();
    store.put('chain-top.qcow2', memory.get('/images/chain-top.qcow2')!);
    await expect(openImage('chain-top.qcow2', { store })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});
