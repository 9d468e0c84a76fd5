import { constants } from 'node:os';
import { loadKoffi } from './koffi-loader.js';

/**
 * The few libc entry points this package calls, bound through koffi (a prebuilt FFI: nothing is compiled at
 * install). Linux only: OFD locks, PUNCH_HOLE and SEEK_DATA are Linux calls with Linux numbers, and these
 * constants are the same on every Linux architecture Node ships for (x64, arm64).
 */
export interface Libc {
  /** fcntl(fd, cmd, struct flock *): the lock commands only. */
  fcntlLock(fd: number, command: number, flock: Uint8Array): number;
  fallocate(fd: number, mode: number, offset: number, length: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  /** preadv2(fd, one iovec over `dst`, offset, flags): bytes read, or -1 (see errno). */
  preadv2(fd: number, dst: Uint8Array, offset: number, flags: number): number;
  /** The address of the first byte of `bytes` (memset of nothing, which returns its argument). */
  addressOf(bytes: Uint8Array): number;
  /** madvise(addr, length, advice): 0, or -1 (see errno). */
  madvise(address: number, length: number, advice: number): number;
  /**
   * sync_file_range(fd, offset, nbytes, flags) on one of koffi's worker threads (the call can wait for a device's
   * queue): `done` gets its result, 0 or -1 (errno is that thread's, not readable here).
   */
  syncFileRangeAsync(fd: number, offset: number, length: number, flags: number, done: (result: number) => void): void;
  /** errno after the last failed call on this thread. */
  errno(): number;
}

/** Why libc could not be bound here, or the binding. Decided once per thread, on first use. */
export type LibcLoad = { ok: true; libc: Libc } | { ok: false; reason: string };

let loaded: LibcLoad | undefined;

/** Binds libc on first use; never throws (a platform without it gets `ok: false` and the reason). */
export function loadLibc(): LibcLoad {
  loaded ??= bind();
  return loaded;
}

function bind(): LibcLoad {
  if (process.platform !== 'linux') return { ok: false, reason: `not available on ${process.platform} (Linux only)` };
  try {
    // Loaded here, at the first call, so that importing this package never fails and costs nothing.
    const koffi = loadKoffi();
    const lib = loadFirst(koffi, ['libc.so.6', 'libc.so']);
    const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
    const fallocate = lib.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');
    const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)');
    // The iovec's base takes the typed array itself: koffi passes its memory, no copy in JS.
    const iovec = koffi.struct('q_iovec', { base: 'void *', len: 'size_t' });
    const preadv2 = lib.func('int64_t preadv2(int fd, const q_iovec *iov, int iovcnt, int64_t offset, int flags)');
    // A user-space address is below 2^47 on every 64-bit Linux Node ships for: exact as a number.
    const memset = lib.func('uintptr_t memset(void *s, int c, size_t n)');
    const madvise = lib.func('int madvise(uintptr_t addr, size_t len, int advice)');
    const syncFileRange = lib.func('int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags)');
    return {
      ok: true,
      libc: {
        fcntlLock: (fd, command, flock) => fcntl(fd, command, 'void *', flock) as number,
        fallocate: (fd, mode, offset, length) => fallocate(fd, mode, offset, length) as number,
        lseek: (fd, offset, whence) => Number(lseek(fd, offset, whence)),
        preadv2: (fd, dst, offset, flags) => Number(preadv2(fd, { base: dst, len: dst.length }, 1, offset, flags)),
        addressOf: (bytes) => Number(memset(bytes, 0, 0)),
        madvise: (address, length, advice) => madvise(address, length, advice) as number,
        syncFileRangeAsync: (fd, offset, length, flags, done) =>
          syncFileRange.async(fd, offset, length, flags, (error: unknown, result: number) => done(error == null ? result : -1)),
        errno: () => koffi.errno(),
      },
    };
  } catch (error) {
    // The first line only: a failed require's message goes on with its require stack, and errors are one line.
    const detail = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    return { ok: false, reason: `the koffi FFI could not bind libc (${detail})` };
  }
}

/** glibc's soname first; musl's libc answers to its plain name. */
function loadFirst(koffi: typeof import('koffi'), names: string[]): ReturnType<typeof koffi.load> {
  for (const name of names.slice(0, -1)) {
    try {
      return koffi.load(name);
    } catch {
      // try the next name
    }
  }
  return koffi.load(names[names.length - 1]!);
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** `EAGAIN` for 11, and so on; `errno N` for numbers Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A libc call failed in a way the caller did not plan for. `code` is the errno's name (EBADF, EIO, ...). */
export class PosixError extends Error {
  override readonly name = 'PosixError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(syscall: string, errno: number) {
    super(`${syscall} failed: ${errnoName(errno)}`);
    this.syscall = syscall;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** Linux errno values the calls here expect and turn into answers rather than errors. */
export const ERRNO = { EAGAIN: 11, EACCES: 13, ENXIO: 6, EINVAL: 22, ENOSYS: 38, EOPNOTSUPP: 95 } as const;

/** The bound libc, or a PosixError-like failure naming why this platform has none. */
export function requireLibc(what: string): Libc {
  const load = loadLibc();
  if (!load.ok) throw new PosixUnavailableError(what, load.reason);
  return load.libc;
}

/** The platform cannot make the call at all (not Linux, or koffi did not load). */
export class PosixUnavailableError extends Error {
  override readonly name = 'PosixUnavailableError';
  readonly code = 'E_POSIX_UNAVAILABLE';

  constructor(what: string, reason: string) {
    super(unavailableMessage(what, reason));
  }
}

/** "`what` is not available ...", in one line, for a reason posixSupport() or loadLibc() gave. */
export function unavailableMessage(what: string, reason: string): string {
  return `${what} is ${reason.startsWith('not available') ? reason : `not available: ${reason}`}`;
}
