import { ERRNO, PosixError, requireLibc } from './libc.js';

/**
 * Reserves the blocks of `length` bytes at `offset` (fallocate with mode 0): the file grows to cover the range if
 * it is shorter, what it held stays, and the new blocks read as zeros without being written (unwritten extents,
 * which SEEK_DATA reports as holes on ext4, xfs and tmpfs). This is what qemu-img's `preallocation=falloc` does
 * to a raw file. Returns false when the file system cannot (EOPNOTSUPP), and nothing changed.
 */
export function reserveSpace(fd: number, offset: number, length: number): boolean {
  if (length <= 0) return true;
  const libc = requireLibc('space reservation');
  if (libc.fallocate(fd, 0, offset, length) === 0) return true;
  const errno = libc.errno();
  if (errno === ERRNO.EOPNOTSUPP || errno === ERRNO.ENOSYS) return false;
  throw new PosixError('fallocate', errno);
}
