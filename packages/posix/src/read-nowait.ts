import { ERRNO, PosixError, requireLibc } from './libc.js';

/** preadv2's flag: fail with EAGAIN instead of waiting for a device (Linux 4.14; buffered reads since 5.x). */
const RWF_NOWAIT = 0x8;

/**
 * Reads what the page cache already holds of `dst.length` bytes at `offset`, without waiting for a device
 * (preadv2 with RWF_NOWAIT): the number of bytes copied into the front of `dst`, which is short (possibly 0) where
 * the cache stops or the file ends, and 0 where the kernel or file system cannot read without waiting. A caller on
 * an event loop reads the rest on a thread that may block. `dst` must be at most 2 GiB.
 */
export function readNowait(fd: number, dst: Uint8Array, offset: number): number {
  const libc = requireLibc('preadv2(RWF_NOWAIT)');
  const count = libc.preadv2(fd, dst, offset, RWF_NOWAIT);
  if (count >= 0) return count;
  const errno = libc.errno();
  // EAGAIN: not cached (or a lock is held); EOPNOTSUPP/EINVAL/ENOSYS: this file system or kernel has no NOWAIT.
  if (errno === ERRNO.EAGAIN || errno === ERRNO.EOPNOTSUPP || errno === ERRNO.EINVAL || errno === ERRNO.ENOSYS) return 0;
  throw new PosixError('preadv2', errno);
}
