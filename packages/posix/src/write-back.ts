import { loadLibc } from './libc.js';

/** sync_file_range's flag: start writing the range's dirty pages that are not yet being written (Linux 2.6.17). */
const SYNC_FILE_RANGE_WRITE = 2;

/**
 * Asks the kernel to start writing the dirty pages of `length` bytes at `offset` to the device now, and returns
 * without waiting for the device (sync_file_range with SYNC_FILE_RANGE_WRITE, run on a worker thread because
 * submitting the writes can itself wait for the device's queue). A hint, not a flush: it makes nothing durable
 * (no metadata, no cache flush of the device), and fdatasync still has to follow. What it buys: a program that
 * writes hundreds of megabytes and then flushes has the device busy while it is still copying, where otherwise
 * the kernel (whose background write-back starts only at a tenth of memory dirty) leaves everything to the flush.
 *
 * Resolves true when the call succeeded (on a file system without write-back, such as tmpfs, it does nothing and
 * succeeds), false where it failed or cannot be made here (not Linux, no koffi): the caller loses only the hint.
 */
export function startWriteback(fd: number, offset: number, length: number): Promise<boolean> {
  const load = loadLibc();
  if (!load.ok || length <= 0) return Promise.resolve(false);
  return new Promise((resolve) => load.libc.syncFileRangeAsync(fd, offset, length, SYNC_FILE_RANGE_WRITE, (result) => resolve(result === 0)));
}
