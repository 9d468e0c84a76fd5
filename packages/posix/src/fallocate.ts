import { ERRNO, PosixError, requireLibc } from './libc.js';

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;

/**
 * Gives the space of `length` bytes at `offset` back to the file system, keeping the file's size
 * (fallocate PUNCH_HOLE | KEEP_SIZE): the range reads as zeros afterwards and `du` drops by the whole blocks in it.
 * Returns false when the file system cannot punch holes (EOPNOTSUPP); the bytes are then unchanged.
 */
export function punchHole(fd: number, offset: number, length: number): boolean {
  return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length, { need: 'hole punching', call: 'fallocate(PUNCH_HOLE)' });
}

/**
 * Reserves the blocks of `length` bytes at `offset` (fallocate with mode 0): the file grows to cover the range if
 * it is shorter, what it held stays, and the new blocks read as zeros without being written (unwritten extents,
 * which SEEK_DATA reports as holes on ext4, xfs and tmpfs). This is what qemu-img's `preallocation=falloc` does
 * to a raw file. Returns false when the file system cannot (EOPNOTSUPP), and nothing changed.
 */
export function reserveSpace(fd: number, offset: number, length: number): boolean {
  return fallocate(fd, 0, offset, length, { need: 'space reservation', call: 'fallocate' });
}

/** fallocate(2) with `mode`; false where the file system does not support the mode, a PosixError on other failures. */
function fallocate(fd: number, mode: number, offset: number, length: number, names: { need: string; call: string }): boolean {
  if (length <= 0) return true;
  const libc = requireLibc(names.need);
  if (libc.fallocate(fd, mode, offset, length) === 0) return true;
  const errno = libc.errno();
  if (errno === ERRNO.EOPNOTSUPP || errno === ERRNO.ENOSYS) return false;
  throw new PosixError(names.call, errno);
}
