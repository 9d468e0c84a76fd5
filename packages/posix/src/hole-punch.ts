import { ERRNO, PosixError, requireLibc } from './libc.js';

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;

/**
 * Gives the space of `length` bytes at `offset` back to the file system, keeping the file's size
 * (fallocate PUNCH_HOLE | KEEP_SIZE): the range reads as zeros afterwards and `du` drops by the whole blocks in it.
 * Returns false when the file system cannot punch holes (EOPNOTSUPP); the bytes are then unchanged.
 */
export function punchHole(fd: number, offset: number, length: number): boolean {
  if (length <= 0) return true;
  const libc = requireLibc('hole punching');
  if (libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) === 0) return true;
  const errno = libc.errno();
  if (errno === ERRNO.EOPNOTSUPP || errno === ERRNO.ENOSYS) return false;
  throw new PosixError('fallocate(PUNCH_HOLE)', errno);
}
