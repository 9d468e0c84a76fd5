import { describe, expect, it } from 'vitest';
import type { BlockFile } from './block-file.js';
import { isDiskError } from './errors.js';

/** Makes a fresh, empty store for one test; `readOnly` reopens the same bytes without write access. */
export interface BlockFileFactory {
  create(): Promise<BlockFile>;
  /** A read-only store holding `bytes`. */
  readOnly(bytes: Uint8Array): Promise<BlockFile>;
}

/** For stores that cannot write (a Blob, a file on a web server): opens a read-only file holding `bytes`. */
export interface ReadOnlyBlockFileFactory {
  open(bytes: Uint8Array): Promise<BlockFile>;
}

/**
 * The contract every BlockFile adapter must keep, as a vitest suite. An adapter's own test file calls this with
 * a factory; a new adapter is done when the suite passes.
 */
export function describeBlockFileConformance(adapter: string, factory: BlockFileFactory): void {
  describe(`BlockFile conformance: ${adapter}`, () => {
    it('starts empty and reads nothing', async () => {
      const file = await factory.create();
      expect(await file.size()).toBe(0);
      expect(await file.read(new Uint8Array(16), 0)).toBe(0);
      await file.close();
    });

    it('reads back what was written, at any offset', async () => {
      const file = await factory.create();
      await file.write(pattern(1000, 7), 0);
      await file.write(pattern(300, 9), 5000);
      expect(await file.size()).toBe(5300);
      const head = new Uint8Array(1000);
      expect(await file.read(head, 0)).toBe(1000);
      expect(head).toEqual(pattern(1000, 7));
      const gap = new Uint8Array(4000);
      expect(await file.read(gap, 1000)).toBe(4000);
      expect(gap.every((b) => b === 0)).toBe(true);
      await file.close();
    });

    it('returns a short count at the end of the file', async () => {
      const file = await factory.create();
      await file.write(pattern(100, 1), 0);
      const dst = new Uint8Array(64).fill(0xee);
      expect(await file.read(dst, 80)).toBe(20);
      expect(dst.subarray(0, 20)).toEqual(pattern(100, 1).subarray(80));
      expect(await file.read(dst, 100)).toBe(0);
      expect(await file.read(dst, 1 << 30)).toBe(0);
      await file.close();
    });

    it('truncates down and grows with zeros', async () => {
      const file = await factory.create();
      await file.write(pattern(4096, 3), 0);
      await file.truncate(1000);
      expect(await file.size()).toBe(1000);
      await file.truncate(8192);
      expect(await file.size()).toBe(8192);
      const tail = new Uint8Array(7192);
      expect(await file.read(tail, 1000)).toBe(7192);
      expect(tail.every((b) => b === 0)).toBe(true);
      await file.close();
    });

    it('flushes without losing data', async () => {
      const file = await factory.create();
      await file.write(pattern(512, 5), 512);
      await file.flush();
      const dst = new Uint8Array(512);
      await file.read(dst, 512);
      expect(dst).toEqual(pattern(512, 5));
      await file.close();
    });

    it('allows many reads at once', async () => {
      const file = await factory.create();
      const data = pattern(64 * 1024, 11);
      await file.write(data, 0);
      const parts = await Promise.all(
        Array.from({ length: 16 }, async (_, i) => {
          const dst = new Uint8Array(4096);
          await file.read(dst, i * 4096);
          return dst;
        }),
      );
      parts.forEach((part, i) => expect(part).toEqual(data.subarray(i * 4096, (i + 1) * 4096)));
      await file.close();
    });

    it('handles offsets beyond 4 GiB without truncating them', async () => {
      const file = await factory.create();
      if (!file.capabilities.sparse) return void (await file.close());
      const offset = 5 * 2 ** 30 + 512;
      await file.write(pattern(512, 2), offset);
      expect(await file.size()).toBe(offset + 512);
      const dst = new Uint8Array(512);
      expect(await file.read(dst, offset)).toBe(512);
      expect(dst).toEqual(pattern(512, 2));
      await file.close();
    });

    it('deallocates ranges where it says it can: zeros read back, the size stays', async () => {
      const file = await factory.create();
      if (file.capabilities.deallocate !== true || file.deallocate === undefined) return void (await file.close());
      await file.write(pattern(256 * 1024, 6), 0);
      expect(await file.deallocate(64 * 1024, 128 * 1024)).toBe(true);
      expect(await file.size()).toBe(256 * 1024);
      const all = new Uint8Array(256 * 1024);
      await file.read(all, 0);
      const expected = pattern(256 * 1024, 6).fill(0, 64 * 1024, 192 * 1024);
      expect(firstDifference(all, expected)).toBe(-1);
      await file.close();
    });

    it('reports runs that cover what was asked, and data where bytes were written', async () => {
      const file = await factory.create();
      if (file.runAt === undefined) return void (await file.close());
      await file.write(pattern(64 * 1024, 8), 0);
      const run = await file.runAt(0, 64 * 1024);
      expect(run.data).toBe(true);
      expect(run.length).toBeGreaterThan(0);
      expect(run.length).toBeLessThanOrEqual(64 * 1024);
      const past = await file.runAt(1 << 20, 4096);
      expect(past.length).toBeGreaterThan(0);
      expect(past.length).toBeLessThanOrEqual(4096);
      await file.close();
    });

    it('reports an allocated size that grows with what was written, where it can tell', async () => {
      const file = await factory.create();
      if (file.allocatedSize === undefined) return void (await file.close());
      const empty = await file.allocatedSize();
      await file.write(pattern(256 * 1024, 12), 0);
      await file.flush();
      expect(await file.allocatedSize()).toBeGreaterThanOrEqual(empty + 128 * 1024);
      await file.close();
    });

    it('fails cleanly after close', async () => {
      const file = await factory.create();
      await file.close();
      await expectCode(
        (async () => file.read(new Uint8Array(1), 0))(),
        'E_IO',
      );
    });

    // A writable adapter's read-only opens keep the read-only contract too.
    describeReadOnlyChecks({ open: (bytes) => factory.readOnly(bytes) });
  });
}

/**
 * The contract of a store that cannot write, as a vitest suite: a Blob, a file on a web server. Nothing here
 * writes; every file is made by `factory.open` with known bytes, and the suite checks that reads give them back
 * (at any offset, in any pieces, many at once), that only the end of the file shortens a read, and that writes and
 * truncation are refused with E_READ_ONLY without changing a byte.
 */
export function describeReadOnlyConformance(adapter: string, factory: ReadOnlyBlockFileFactory): void {
  describe(`BlockFile conformance (read-only): ${adapter}`, () => describeReadOnlyChecks(factory));
}

function describeReadOnlyChecks(factory: ReadOnlyBlockFileFactory): void {
  describe('read-only', () => {
    it('says it cannot write, and reads back what it holds', async () => {
      const file = await factory.open(pattern(100, 4));
      expect(file.capabilities.writable).toBe(false);
      expect(await file.size()).toBe(100);
      const dst = new Uint8Array(100);
      expect(await file.read(dst, 0)).toBe(100);
      expectSameBytes(dst, pattern(100, 4));
      await file.close();
    });

    it('holds an empty file: size 0, reads nothing', async () => {
      const file = await factory.open(new Uint8Array(0));
      expect(await file.size()).toBe(0);
      expect(await file.read(new Uint8Array(16), 0)).toBe(0);
      await file.close();
    });

    it('refuses writes and truncation with E_READ_ONLY, and keeps its bytes', async () => {
      const file = await factory.open(pattern(100, 4));
      await expectCode(file.write(new Uint8Array(1), 0), 'E_READ_ONLY');
      await expectCode(file.write(new Uint8Array(10), 100), 'E_READ_ONLY');
      await expectCode(file.truncate(0), 'E_READ_ONLY');
      await expectCode(file.truncate(200), 'E_READ_ONLY');
      expect(await file.size()).toBe(100);
      const dst = new Uint8Array(100);
      expect(await file.read(dst, 0)).toBe(100);
      expectSameBytes(dst, pattern(100, 4));
      await file.flush();
      await file.close();
    });

    it('shortens a read only at the end of the file', async () => {
      const file = await factory.open(pattern(1000, 1));
      const dst = new Uint8Array(64).fill(0xee);
      expect(await file.read(dst, 980)).toBe(20);
      expectSameBytes(dst.subarray(0, 20), pattern(1000, 1).subarray(980));
      // Past what was read, the caller's buffer is left alone.
      expect(dst.subarray(20).every((b) => b === 0xee)).toBe(true);
      expect(await file.read(dst, 1000)).toBe(0);
      expect(await file.read(dst, 1 << 30)).toBe(0);
      expect(await file.read(dst, 5 * 2 ** 30 + 512)).toBe(0);
      expect(await file.read(new Uint8Array(0), 10)).toBe(0);
      await file.close();
    });

    it('reads any piece of a larger file, at odd offsets and lengths', async () => {
      const size = 300 * 1024 + 77;
      const data = pattern(size, 13);
      const file = await factory.open(data);
      expect(await file.size()).toBe(size);
      for (const [offset, length] of [[0, size], [1, 4095], [65535, 2], [65536 * 3 - 100, 70_000], [size - 5000, 5000], [size - 1, 1]] as const) {
        const dst = new Uint8Array(length);
        expect(await file.read(dst, offset)).toBe(length);
        expectSameBytes(dst, data.subarray(offset, offset + length), `${length} bytes at ${offset}`);
      }
      await file.close();
    });

    it('allows many reads at once, overlapping and not', async () => {
      const data = pattern(256 * 1024, 11);
      const file = await factory.open(data);
      const reads = Array.from({ length: 40 }, (_, i) => ({ offset: (i * 7919) % (250 * 1024), length: 1000 + ((i * 4099) % 9000) }));
      const parts = await Promise.all(
        reads.map(async ({ offset, length }) => {
          const dst = new Uint8Array(length);
          const count = await file.read(dst, offset);
          return { dst: dst.subarray(0, count), offset, length };
        }),
      );
      for (const { dst, offset, length } of parts) {
        expectSameBytes(dst, data.subarray(offset, Math.min(data.length, offset + length)), `${length} bytes at ${offset}`);
      }
      await file.close();
    });

    it('fails cleanly after close', async () => {
      const file = await factory.open(pattern(100, 2));
      await file.close();
      await expectCode((async () => file.read(new Uint8Array(1), 0))(), 'E_IO');
    });
  });
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(isDiskError(error) ? error.code : error).toBe(code);
    return;
  }
  throw new Error(`expected an error with code ${code}`);
}

/**
 * Asserts two byte arrays are equal, naming the first offset where they differ. vitest's toEqual walks a typed
 * array element by element and takes seconds on a megabyte; tests of guest data use this instead.
 */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, label = 'bytes'): void {
  const at = firstDifference(actual, expected);
  if (at !== -1) {
    expect.fail(`${label}: first difference at offset ${at} (got ${actual[at]}, expected ${expected[at]}; lengths ${actual.length}, ${expected.length})`);
  }
}

/** The first offset where two byte arrays differ, or -1 when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return bytes;
}
