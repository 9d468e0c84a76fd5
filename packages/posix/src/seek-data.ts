import { ERRNO, PosixError, requireLibc } from './libc.js';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/** One run of a file: bytes that are stored (`data`) or a hole that reads as zeros without being stored. */
export interface FileRun {
  data: boolean;
  /** Bytes in the run from the asked offset, at most the length asked for. */
  length: number;
}

/**
 * What the file holds at `offset`: data or a hole, and for how many bytes (up to `length`), from lseek's
 * SEEK_DATA / SEEK_HOLE. Past the end of the file is a hole. On a file system without holes (the kernel then
 * reports everything as data) the answer is one data run, which is still true.
 */
export function fileRunAt(fd: number, offset: number, length: number): FileRun {
  const libc = requireLibc('SEEK_DATA');
  const nextData = libc.lseek(fd, offset, SEEK_DATA);
  if (nextData < 0) {
    const errno = libc.errno();
    // ENXIO: no data at or after offset (a hole to the end, or offset past the end).
    if (errno === ERRNO.ENXIO) return { data: false, length };
    throw new PosixError('lseek(SEEK_DATA)', errno);
  }
  if (nextData > offset) return { data: false, length: Math.min(length, nextData - offset) };
  const nextHole = libc.lseek(fd, offset, SEEK_HOLE);
  if (nextHole < 0) throw new PosixError('lseek(SEEK_HOLE)', libc.errno());
  return { data: true, length: Math.min(length, nextHole - offset) };
}
