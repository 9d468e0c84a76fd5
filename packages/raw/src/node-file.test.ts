import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeBlockFileConformance } from './conformance.js';
import { isMemoryBacked, openNodeFile, type NodeFileOptions } from './node-file.js';

const dir = mkdtempSync(join(tmpdir(), 'q-raw-'));
let counter = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 'nowait' on a disk (/var/tmp), so that reads take the page cache's answer first and writes block under the
// stall guard (tmpdir() may be tmpfs elsewhere, where 'nowait' behaves as 'memory').
const diskDir = mkdtempSync('/var/tmp/q-raw-nowait-');
afterAll(() => rmSync(diskDir, { recursive: true, force: true }));

const MODES: Array<{ suffix: string; blocking?: NodeFileOptions['blocking']; writeBehind?: number; where: string }> = [
  { suffix: '', where: dir },
  { suffix: ' (blocking)', blocking: true, where: dir },
  { suffix: ' (blocking always)', blocking: 'always', where: dir },
  { suffix: ' (blocking nowait)', blocking: 'nowait', where: diskDir },
  // A hint after every 4 KiB written, on a disk where hints are given: writes, truncates and closes with one running.
  { suffix: ' (write-behind)', writeBehind: 4096, where: diskDir },
  { suffix: ' (blocking, write-behind)', blocking: true, writeBehind: 4096, where: diskDir },
  { suffix: ' (blocking writes, write-behind)', blocking: 'writes', writeBehind: 4096, where: diskDir },
];

for (const { suffix, blocking, writeBehind, where } of MODES) {
  describeBlockFileConformance(`NodeBlockFile${suffix}`, {
    create: () => openNodeFile(join(where, `f${counter++}`), { create: true, truncate: true, blocking, writeBehind }),
    readOnly: async (bytes) => {
      const path = join(where, `ro${counter++}`);
      writeFileSync(path, bytes);
      return openNodeFile(path, { blocking });
    },
  });
}

describe('NodeBlockFile (blocking nowait) beside the page cache', () => {
  it('reads a file whose pages were dropped from the cache: the pool reads what the cache did not hold', async () => {
    const path = join(diskDir, 'dropped');
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 13 + (i >> 12)) & 0xff);
    writeFileSync(path, bytes);
    expect(spawnSync('sync', [path]).status).toBe(0);
    const file = await openNodeFile(path, { blocking: 'nowait' });
    try {
      for (const [offset, length] of [[0, 4096], [300_000, 60_000], [4095, 2], [bytes.length - 10, 10], [65536, 512 * 1024]] as const) {
        expect(spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']).status).toBe(0);
        const dst = new Uint8Array(length);
        expect(await file.read(dst, offset)).toBe(length);
        expect(dst).toEqual(bytes.subarray(offset, offset + length));
      }
      // A large read whose front is cached (read just before) and whose rest is not: the page cache gives the
      // front on this thread, the pool the rest.
      expect(spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']).status).toBe(0);
      expect(await file.read(new Uint8Array(8192), 0)).toBe(8192);
      const whole = new Uint8Array(bytes.length);
      expect(await file.read(whole, 0)).toBe(bytes.length);
      expect(whole).toEqual(bytes);
      const tail = new Uint8Array(4096);
      expect(await file.read(tail, bytes.length - 1000)).toBe(1000);
    } finally {
      await file.close();
    }
  });
});

describe('NodeBlockFile large writes on disk', () => {
  // On a disk-backed file system a write goes out in pieces of at most 256 KiB (WRITE_PIECE): every piece lands.
  for (const blocking of [false, 'always', 'writes'] as const) {
    it(`writes 1 MiB + 3 bytes at an odd offset whole (blocking: ${blocking})`, async () => {
      const file = await openNodeFile(join(diskDir, `large${counter++}`), { create: true, truncate: true, blocking });
      const bytes = new Uint8Array((1 << 20) + 3).map((_, i) => (i * 7 + 1) & 0xff);
      await file.write(bytes, 4097);
      const back = new Uint8Array(bytes.length + 2);
      expect(await file.read(back, 4096)).toBe(bytes.length + 1);
      expect(back[0]).toBe(0);
      // every(), not toEqual: a deep comparison of a MiB takes vitest seconds.
      expect(back.subarray(1, bytes.length + 1).every((value, i) => value === bytes[i])).toBe(true);
      await file.close();
    });
  }
});

describe("NodeBlockFile (blocking 'writes')", () => {
  it('writes a large request on the calling thread: the bytes are in the file before the promise is awaited', async () => {
    const path = join(diskDir, `writes${counter++}`);
    const file = await openNodeFile(path, { create: true, truncate: true, blocking: 'writes' });
    try {
      const bytes = new Uint8Array(1 << 20).fill(0x5a);
      const writing = file.write(bytes, 0);
      expect(readFileSync(path).length).toBe(bytes.length);
      await writing;
      // A large read still goes to the pool, and reads what was written.
      const back = new Uint8Array(bytes.length);
      expect(await file.read(back, 0)).toBe(bytes.length);
      expect(back.every((value) => value === 0x5a)).toBe(true);
    } finally {
      await file.close();
    }
  });
});

describe('isMemoryBacked', () => {
  it('tells tmpfs (/dev/shm) from a disk file system, and says no when it cannot tell', () => {
    // /dev/shm is tmpfs on Linux; the repository lives on a disk file system here and in CI.
    expect(isMemoryBacked('/dev/shm')).toBe(true);
    expect(isMemoryBacked(import.meta.dirname)).toBe(false);
    expect(isMemoryBacked(join(dir, 'missing', 'file'))).toBe(false);
  });
});

describe('openNodeFile', () => {
  // Blocking modes open with blocking calls (openSync, fstatSync): the same answers as the pool's.
  for (const blocking of [undefined, true, 'always'] as const) {
    it(`names a missing file with E_NOT_FOUND (blocking: ${blocking})`, async () => {
      await expect(openNodeFile(join(dir, 'missing'), { blocking })).rejects.toMatchObject({
        code: 'E_NOT_FOUND',
        message: 'open failed: No such file or directory',
      });
    });

    it(`refuses a directory (blocking: ${blocking})`, async () => {
      await expect(openNodeFile(dir, { blocking })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    });
  }

  it('a blocking read-only file sends nothing to the thread pool: open, small reads, size, flush, close', async () => {
    // What lets a short command (`qcow info`) run without starting libuv's pool threads.
    const path = join(dir, `pool${counter++}`);
    writeFileSync(path, new Uint8Array(256 * 1024).fill(7));
    const pending = () => process.getActiveResourcesInfo().filter((name) => name === 'FSReqCallback').length;
    const before = pending();
    const opening = openNodeFile(path, { blocking: true });
    expect(pending()).toBe(before);
    const file = await opening;
    const dst = new Uint8Array(64 * 1024);
    const steps = [file.read(dst, 4096), file.size(), file.allocatedSize(), file.flush()];
    expect(pending()).toBe(before);
    const [read, size, allocated] = await Promise.all(steps);
    expect([read, size, dst.every((b) => b === 7)]).toEqual([64 * 1024, 256 * 1024, true]);
    expect(allocated).toBeGreaterThan(0);
    const closing = file.close();
    expect(pending()).toBe(before);
    await closing;
  });
});

describe('NodeBlockFile holes', () => {
  it('keeps a data run it found until it punches or truncates, and never keeps a hole', async () => {
    const file = await openNodeFile(join(dir, `holes${counter++}`), { create: true, truncate: true });
    const block = new Uint8Array(1 << 20).fill(7);
    await file.write(block, 0);
    await file.flush();
    expect(await file.runAt(0, 2 ** 40)).toEqual({ data: true, length: 1 << 20 });
    // Answered from the run it keeps: still data.
    expect(await file.runAt(4096, 8192)).toEqual({ data: true, length: 8192 });
    expect(await file.deallocate(256 * 1024, 256 * 1024)).toBe(true);
    expect(await file.runAt(256 * 1024, 2 ** 40)).toEqual({ data: false, length: 256 * 1024 });
    // A hole is asked again each time: a write fills it.
    await file.write(block.subarray(0, 256 * 1024), 256 * 1024);
    expect((await file.runAt(256 * 1024, 4096)).data).toBe(true);
    await file.truncate(0);
    await file.truncate(1 << 20);
    expect((await file.runAt(0, 2 ** 40)).data).toBe(false);
    await file.close();
  });
});
