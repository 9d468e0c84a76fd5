import { mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

// Counts how often the store and its files ask @q/posix (which loads koffi and binds libc on the first ask).
const asked = vi.hoisted(() => ({ count: 0 }));
vi.mock('@q/posix', async (importOriginal) => {
  const original = await importOriginal<typeof import('@q/posix')>();
  return {
    ...original,
    posixSupport: () => {
      asked.count++;
      return original.posixSupport();
    },
  };
});

const { nodeFileStore } = await import('./node-file-store.js');
const { routeStore } = await import('./store-router.js');

const dir = mkdtempSync(join(tmpdir(), 'q-raw-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  asked.count = 0;
});

describe('nodeFileStore: the FFI is loaded when first needed', () => {
  it('making the store, opening and reading a file, and an empty lock request do not ask for it', async () => {
    const path = join(dir, 'plain');
    writeFileSync(path, new Uint8Array(4096).fill(7));
    const store = routeStore({}, nodeFileStore());
    const file = await store.open(path);
    const bytes = new Uint8Array(512);
    await file.read(bytes, 0);
    file.lock?.({ take: 0, unshare: 0 });
    await file.close();
    expect(bytes[0]).toBe(7);
    expect(asked.count).toBe(0);
  });

  it('capabilities ask when read, and say what the platform can do', async () => {
    const store = nodeFileStore();
    const path = join(dir, 'caps');
    writeFileSync(path, new Uint8Array(512));
    const file = await store.open(path, { writable: true });
    try {
      expect(asked.count).toBe(0);
      expect(store.capabilities).toEqual({ write: true, lock: true, deallocate: true });
      expect(file.capabilities).toEqual({ writable: true, sparse: true, deallocate: true, lock: true });
      expect(asked.count).toBeGreaterThan(0);
    } finally {
      await file.close();
    }
  });

  it('a lock request that takes bytes asks, and later empty requests still drop what was taken', async () => {
    const path = join(dir, 'locked');
    writeFileSync(path, new Uint8Array(512));
    const file = await nodeFileStore().open(path);
    const other = await nodeFileStore().open(path);
    try {
      file.lock!({ take: 1, unshare: 2 });
      expect(asked.count).toBeGreaterThan(0);
      expect(() => other.lock!({ take: 2, unshare: 0 })).toThrow(/Failed to get "write" lock/);
      file.lock!({ take: 0, unshare: 0 });
      expect(() => other.lock!({ take: 2, unshare: 0 })).not.toThrow();
    } finally {
      await file.close();
      await other.close();
    }
  });
});

describe('nodeFileStore names', () => {
  // A blocking store (a CLI's) asks with blocking calls; the answers are the pool's.
  for (const blocking of [undefined, true, 'always'] as const) {
    it(`identify resolves links and keeps a missing name; exists tells files from missing names (blocking: ${blocking})`, async () => {
      const target = join(dir, `named-${blocking}`);
      const link = join(dir, `link-${blocking}`);
      writeFileSync(target, new Uint8Array(512));
      symlinkSync(target, link);
      const store = nodeFileStore({ blocking });
      expect(await store.identify(link)).toBe(realpathSync(target));
      expect(await store.identify(join(dir, 'missing'))).toBe(join(dir, 'missing'));
      expect([await store.exists(link), await store.exists(join(dir, 'missing'))]).toEqual([true, false]);
    });
  }
});
