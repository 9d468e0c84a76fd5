import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chainStatus } from '@q/backing';
import { expectSameBytes } from '@q/raw/conformance';
import { CothreadDisk } from './cothread-disk.js';
import { openDisk } from './open-disk.js';
import { guestSha256 } from './guest-sha256.js';

/** The worker runs the built script (tests run after the package's build). */
const workerUrl = new URL('../dist/cothread-worker.js', import.meta.url);
const fixtures = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');
const scratch = mkdtempSync(join(tmpdir(), 'q-cothread-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));


describe('CothreadDisk', () => {
  it('reads what openDisk reads, snapshots and backing chains included', async () => {
    for (const spec of ['v3-64k.qcow2', 'zstd-64k.qcow2', 'chain-top.qcow2']) {
      const answer = JSON.parse(readFileSync(join(fixtures, spec.replace('.qcow2', '.json')), 'utf8')) as { guestSha256: string };
      const disk = await CothreadDisk.open(join(fixtures, spec), { workerUrl });
      try {
        expect(disk.readOnly).toBe(true);
        expect(await guestSha256(disk)).toBe(answer.guestSha256);
        const direct = await openDisk(join(fixtures, spec));
        expect(await disk.blockStatus(0, disk.size)).toEqual(await direct.blockStatus(0, disk.size));
        // The backing layers show through, so chain walks (NBD block status) see what the worker sees.
        expect(await chainStatus(disk, 0, disk.size)).toEqual(await chainStatus(direct, 0, disk.size));
        expect(disk.backing === undefined).toBe(direct.backing === undefined);
        await direct.close();
      } finally {
        await disk.close();
      }
    }
  });

  it('opens names through the store a module makes in the worker', async () => {
    // A store cannot cross to a worker thread: the worker imports a module that makes it.
    const raw = pathToFileURL(join(import.meta.dirname, '..', '..', 'raw', 'dist', 'index.js')).href;
    const module = join(scratch, 'memory-store.mjs');
    writeFileSync(
      module,
      [
        `import { readFileSync } from 'node:fs';`,
        `import { MemoryStore } from ${JSON.stringify(raw)};`,
        `export function createStore() {`,
        `  const store = new MemoryStore();`,
        `  for (const name of ['chain-top.qcow2', 'chain-mid.qcow2', 'chain-base.raw']) {`,
        `    store.put('mem/' + name, new Uint8Array(readFileSync(${JSON.stringify(fixtures)} + '/' + name)));`,
        `  }`,
        `  return store;`,
        `}`,
      ].join('\n'),
    );
    const answer = JSON.parse(readFileSync(join(fixtures, 'chain-top.json'), 'utf8')) as { guestSha256: string };
    const disk = await CothreadDisk.open('mem/chain-top.qcow2', { workerUrl, storeModule: pathToFileURL(module) });
    try {
      expect(disk.name).toBe('mem/chain-top.qcow2');
      expect(await guestSha256(disk)).toBe(answer.guestSha256);
    } finally {
      await disk.close();
    }
  });

  it('writes with many requests in flight, then a flush covers them all', async () => {
    const path = join(scratch, 'rw.qcow2');
    copyFileSync(join(fixtures, 'v3-64k.qcow2'), path);
    const disk = await CothreadDisk.open(path, { writable: true, workerUrl });
    const writes = Array.from({ length: 64 }, (_, i) => disk.write(new Uint8Array(4096 + i * 512).fill(i + 1), i * 60_000));
    await Promise.all(writes);
    await disk.writeZeroes(65536, 65536);
    await disk.flush();
    await disk.close();
    const check = await openDisk(path);
    try {
      for (let i = 0; i < 64; i++) {
        const back = new Uint8Array(4096 + i * 512);
        await check.read(back, i * 60_000);
        // Check the bytes outside the zeroed range.
        const wrong = [...back].findIndex((byte, k) => {
          const at = i * 60_000 + k;
          return byte !== (at >= 65536 && at < 131072 ? 0 : i + 1);
        });
        expect(wrong, `write ${i}`).toBe(-1);
      }
    } finally {
      await check.close();
    }
  });

  it('queues more requests than it has slots, and splits requests bigger than a slot', async () => {
    const spec = join(fixtures, 'v3-64k.qcow2');
    const disk = await CothreadDisk.open(spec, { workerUrl });
    const direct = await openDisk(spec);
    try {
      const offsets = Array.from({ length: 300 }, (_, i) => (i * 7919 * 512) % (disk.size - 4096));
      const viaWorker = offsets.map(() => new Uint8Array(4096));
      await Promise.all(offsets.map((offset, i) => disk.read(viaWorker[i]!, offset)));
      for (const [i, offset] of offsets.entries()) {
        const expected = new Uint8Array(4096);
        await direct.read(expected, offset);
        expectSameBytes(viaWorker[i]!, expected, `read at ${offset}`);
      }
      const big = new Uint8Array(Math.min(disk.size, 3 << 20) - 1000);
      const bigExpected = new Uint8Array(big.length);
      await Promise.all([disk.read(big, 1000), direct.read(bigExpected, 1000)]);
      expect(Buffer.compare(big, bigExpected)).toBe(0);
    } finally {
      await disk.close();
      await direct.close();
    }
  });

  it('returns errors per request as DiskErrors and keeps serving', async () => {
    const disk = await CothreadDisk.open(join(fixtures, 'v3-64k.qcow2'), { workerUrl });
    try {
      await expect(disk.read(new Uint8Array(16), disk.size)).rejects.toMatchObject({ code: 'E_INVALID' });
      await expect(disk.write(new Uint8Array(16), 0)).rejects.toMatchObject({ code: 'E_READ_ONLY' });
      const ok = new Uint8Array(512);
      await disk.read(ok, 0);
    } finally {
      await disk.close();
    }
    await expect(disk.flush()).rejects.toMatchObject({ code: 'E_IO' });
  });

  it('reports a disk that cannot be opened', async () => {
    await expect(CothreadDisk.open(join(scratch, 'missing.qcow2'), { workerUrl })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});
