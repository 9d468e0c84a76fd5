import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileRunAt, HUGE_PAGE_BYTES, hugePageBytes, ofdLockConflicts, posixSupport, punchHole, readNowait, reserveSpace, setOfdLock, startWriteback, unavailableMessage } from './index.js';
import { loadKoffi } from './koffi-loader.js';
import { requireLibc } from './libc.js';

const dir = mkdtempSync(join(tmpdir(), 'q-posix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Pages of `fd`'s file that are dirty in the page cache, by cachestat(2) (Linux 6.5): what write-back has not yet
 * taken. Bound here, for the test only.
 */
function dirtyPages(fd: number): number {
  const koffi = loadKoffi();
  const syscall = koffi.load('libc.so.6').func('long syscall(long number, ...)');
  const range = new BigUint64Array([0n, 0n]); // offset 0, length 0: the whole file
  const stat = new BigUint64Array(5); // nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted
  const CACHESTAT_X64 = 451;
  const result = Number(syscall(CACHESTAT_X64, 'int', fd, 'void *', range, 'void *', stat, 'unsigned int', 0));
  if (result !== 0) throw new Error(`cachestat failed (errno ${koffi.errno()})`);
  return Number(stat[1]);
}

/** The lines of /proc/locks that concern `path` (by inode): "OFDLCK ADVISORY READ ... start end". */
function procLocks(path: string): string[] {
  const inode = statSync(path).ino;
  const text = spawnSync('cat', ['/proc/locks'], { encoding: 'utf8' }).stdout;
  return text.split('\n').filter((line) => line.includes(`:${inode} `));
}

describe('@q/posix', () => {
  it('says in one sentence why a call is unavailable, whichever way the reason is put', () => {
    expect(unavailableMessage('image locking', 'not available on darwin (Linux only)')).toBe('image locking is not available on darwin (Linux only)');
    expect(unavailableMessage('image locking', "the koffi FFI could not bind libc (Cannot find module 'koffi')")).toBe(
      "image locking is not available: the koffi FFI could not bind libc (Cannot find module 'koffi')",
    );
  });

  it('binds libc here (Linux with koffi): the machine the project runs on must have it', () => {
    expect(posixSupport()).toEqual({ available: true });
  });

  it('takes OFD locks the kernel reports, which conflict between two opens of one file', () => {
    const path = join(dir, 'locks');
    writeFileSync(path, new Uint8Array(4096));
    const a = openSync(path, 'r+');
    const b = openSync(path, 'r');
    try {
      expect(setOfdLock(a, 100, 1, 'read')).toBe(true);
      expect(procLocks(path).some((line) => /OFDLCK\s+ADVISORY\s+READ\s+\S+\s+\S+\s+100 100/.test(line))).toBe(true);
      // Shared locks coexist; an exclusive one does not, and the test says so without taking anything.
      expect(setOfdLock(b, 100, 1, 'read')).toBe(true);
      expect(ofdLockConflicts(a, 100, 1, 'write')).toBe(true);
      expect(ofdLockConflicts(a, 101, 1, 'write')).toBe(false);
      const c = openSync(path, 'r+');
      expect(setOfdLock(c, 100, 1, 'write')).toBe(false);
      closeSync(c);
      // An open's own locks never conflict with themselves.
      expect(setOfdLock(b, 100, 1, 'unlock')).toBe(true);
      expect(ofdLockConflicts(a, 100, 1, 'write')).toBe(false);
      expect(setOfdLock(a, 100, 1, 'write')).toBe(true);
    } finally {
      closeSync(a);
      closeSync(b);
    }
    expect(procLocks(path)).toEqual([]);
  });

  it('sees the locks of another process (a child holding a lock)', async () => {
    const path = join(dir, 'child-locks');
    writeFileSync(path, new Uint8Array(512));
    const holder = spawn('flock', ['--shared', path, 'sleep', '30']);
    try {
      // flock(2) locks are another family: OFD locks do not see them (why QEMU and flock never met).
      await new Promise((resolve) => setTimeout(resolve, 200));
      const fd = openSync(path, 'r');
      try {
        expect(ofdLockConflicts(fd, 0, 0, 'write')).toBe(false);
      } finally {
        closeSync(fd);
      }
    } finally {
      holder.kill();
    }
  });

  it('punches holes: the range reads as zeros, the size stays, the blocks go', () => {
    const path = join(dir, 'holes');
    const fd = openSync(path, 'w+');
    try {
      writeSync(fd, new Uint8Array(1 << 20).fill(0xa5), 0, 1 << 20, 0);
      const before = statSync(path).blocks;
      expect(punchHole(fd, 0, 512 * 1024)).toBe(true);
      const after = statSync(path);
      expect(after.size).toBe(1 << 20);
      expect(before - after.blocks).toBeGreaterThanOrEqual((512 * 1024) / 512 - 8);
      expect(fileRunAt(fd, 0, 1 << 20)).toEqual({ data: false, length: 512 * 1024 });
      expect(fileRunAt(fd, 512 * 1024, 1 << 20)).toEqual({ data: true, length: 512 * 1024 });
      expect(fileRunAt(fd, 4096, 8192)).toEqual({ data: false, length: 8192 });
      // Past the end of the file is a hole.
      expect(fileRunAt(fd, 2 << 20, 4096)).toEqual({ data: false, length: 4096 });
    } finally {
      closeSync(fd);
    }
  });

  it('reserves space: the file grows to cover the range, the blocks are counted, the bytes read as zeros', () => {
    const path = join(dir, 'reserved');
    writeFileSync(path, new Uint8Array(4096).fill(7));
    const fd = openSync(path, 'r+');
    try {
      expect(reserveSpace(fd, 0, 1 << 20)).toBe(true);
      const after = statSync(path);
      expect(after.size).toBe(1 << 20);
      expect(after.blocks * 512).toBeGreaterThanOrEqual(1 << 20);
      const bytes = readFileSync(path);
      expect(bytes[0]).toBe(7);
      expect(bytes.subarray(4096).every((byte) => byte === 0)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('turns a bad descriptor into a PosixError with the errno name', () => {
    expect(() => setOfdLock(1_000_000, 0, 1, 'read')).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('reads what the page cache holds without waiting (preadv2 RWF_NOWAIT), and nothing of an uncached file', () => {
    // On a disk (not tmpfs, whose pages cannot be dropped): /var/tmp is disk-backed on the machines this runs on.
    const disk = mkdtempSync('/var/tmp/q-posix-nowait-');
    try {
      const path = join(disk, 'cached');
      const bytes = new Uint8Array(256 * 1024).map((_, i) => (i * 7) & 0xff);
      writeFileSync(path, bytes);
      const fd = openSync(path, 'r');
      try {
        const dst = new Uint8Array(8192);
        expect(readNowait(fd, dst, 4096)).toBe(8192);
        expect(dst).toEqual(bytes.subarray(4096, 4096 + 8192));
        // Short at the end of the file, nothing past it.
        expect(readNowait(fd, dst, bytes.length - 100)).toBe(100);
        expect(readNowait(fd, dst, bytes.length + 4096)).toBe(0);
        // Written back (sync) and dropped from the cache (dd's nocache: posix_fadvise DONTNEED), it would wait.
        expect(spawnSync('sync', [path]).status).toBe(0);
        const dropped = spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'], { encoding: 'utf8' });
        expect(dropped.status, dropped.stderr).toBe(0);
        expect(readNowait(fd, dst, 128 * 1024)).toBe(0);
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(disk, { recursive: true, force: true });
    }
  });

  it('hands out zeroed arrays on huge-page boundaries, advised MADV_HUGEPAGE', () => {
    const bytes = hugePageBytes(3 * 1024 * 1024)!;
    expect(bytes.length).toBe(3 * 1024 * 1024);
    expect(bytes.every((byte) => byte === 0)).toBe(true);
    const address = requireLibc('madvise').addressOf(bytes);
    expect(address % HUGE_PAGE_BYTES).toBe(0);
    // The mapping holding it carries the advice (VmFlags "hg"), whatever the kernel then finds to back it with.
    const smaps = readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
    const mapping = smaps.find((block) => {
      const [start, end] = block.split(' ')[0]!.split('-').map((hex) => parseInt(hex, 16));
      return start! <= address && address < end!;
    });
    expect(mapping).toMatch(/VmFlags:.* hg/);
    bytes.fill(7);
    expect(bytes[bytes.length - 1]).toBe(7);
  });

  it('starts writing a file on a disk to its device without waiting: the pages leave the dirty set at once', async () => {
    // On a disk (/var/tmp), not tmpdir(), which may be a tmpfs with no write-back at all.
    const diskDir = mkdtempSync('/var/tmp/q-posix-wb-');
    const fd = openSync(join(diskDir, 'file'), 'w+');
    try {
      const bytes = new Uint8Array(8 * 1024 * 1024).fill(0x5a);
      writeSync(fd, bytes, 0, bytes.length, 0);
      // Nothing starts this file's write-back by itself this soon (the kernel waits ~30 s or a tenth of memory dirty).
      expect(dirtyPages(fd)).toBeGreaterThan(1000);
      expect(await startWriteback(fd, 0, bytes.length)).toBe(true);
      // The writes were submitted before the call returned: under write-back or written, no longer dirty.
      expect(dirtyPages(fd)).toBe(0);
    } finally {
      closeSync(fd);
      rmSync(diskDir, { recursive: true, force: true });
    }
  });

  it('answers false where the hint cannot be given (a descriptor that is not open, an empty range)', async () => {
    const fd = openSync(join(dir, 'closed'), 'w');
    closeSync(fd);
    expect(await startWriteback(fd, 0, 4096)).toBe(false);
    expect(await startWriteback(1, 0, 0)).toBe(false);
  });
});
