import { ERRNO, PosixError, requireLibc } from './libc.js';

/** A byte-range lock's kind: shared (F_RDLCK), exclusive (F_WRLCK), or none (F_UNLCK). */
export type LockKind = 'read' | 'write' | 'unlock';

// Linux fcntl commands and lock types (asm-generic/fcntl.h; the same on x64 and arm64).
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const LOCK_TYPES: Record<LockKind, number> = { read: 0, write: 1, unlock: 2 };
const F_UNLCK = 2;

/** struct flock on 64-bit Linux: short l_type, short l_whence, (pad), off_t l_start, off_t l_len, pid_t l_pid. */
const FLOCK_BYTES = 32;

function flockStruct(kind: LockKind, start: number, length: number): Uint8Array {
  const bytes = new Uint8Array(FLOCK_BYTES);
  const view = new DataView(bytes.buffer);
  const little = isLittleEndian();
  view.setInt16(0, LOCK_TYPES[kind], little);
  view.setInt16(2, 0 /* SEEK_SET */, little);
  view.setBigInt64(8, BigInt(start), little);
  view.setBigInt64(16, BigInt(length), little);
  return bytes;
}

/**
 * Sets an open-file-description lock on `length` bytes at `start` (fcntl F_OFD_SETLK), without waiting. OFD locks
 * belong to the open file (not the process): two opens of one file conflict even in one process, and the lock
 * goes when the last descriptor of that open is closed, or the process dies. QEMU locks images this way.
 * Returns false when another open file holds a conflicting lock.
 */
export function setOfdLock(fd: number, start: number, length: number, kind: LockKind): boolean {
  const libc = requireLibc('OFD locking');
  if (libc.fcntlLock(fd, F_OFD_SETLK, flockStruct(kind, start, length)) === 0) return true;
  const errno = libc.errno();
  if (errno === ERRNO.EAGAIN || errno === ERRNO.EACCES) return false;
  throw new PosixError('fcntl(F_OFD_SETLK)', errno);
}

/**
 * Whether a lock of `kind` on the range would conflict with a lock another open file holds (F_OFD_GETLK). The
 * caller's own locks never conflict with themselves, so this asks only about others. Takes no lock.
 */
export function ofdLockConflicts(fd: number, start: number, length: number, kind: Exclude<LockKind, 'unlock'>): boolean {
  const libc = requireLibc('OFD locking');
  const flock = flockStruct(kind, start, length);
  if (libc.fcntlLock(fd, F_OFD_GETLK, flock) !== 0) throw new PosixError('fcntl(F_OFD_GETLK)', libc.errno());
  // The kernel answers F_UNLCK in l_type when nothing conflicts, else describes the conflicting lock.
  return new DataView(flock.buffer).getInt16(0, isLittleEndian()) !== F_UNLCK;
}

let littleEndian: boolean | undefined;

function isLittleEndian(): boolean {
  littleEndian ??= new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  return littleEndian;
}
