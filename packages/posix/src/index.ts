import { loadLibc } from './libc.js';

export { errnoName, PosixError, PosixUnavailableError, unavailableMessage } from './libc.js';
export { setOfdLock, ofdLockConflicts, type LockKind } from './ofd-lock.js';
export { punchHole, reserveSpace } from './fallocate.js';
export { fileRunAt, type FileRun } from './seek-data.js';
export { readNowait } from './read-nowait.js';
export { hugePageBytes, HUGE_PAGE_BYTES } from './huge-pages.js';
export { startWriteback } from './write-back.js';

/** Whether the calls of this package work here; otherwise why not (they then throw PosixUnavailableError). */
export function posixSupport(): { available: true } | { available: false; reason: string } {
  const load = loadLibc();
  return load.ok ? { available: true } : { available: false, reason: load.reason };
}
