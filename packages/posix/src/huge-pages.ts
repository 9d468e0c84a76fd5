import { loadLibc } from './libc.js';

/** The size of a transparent huge page on x64 and arm64 Linux (4 KiB base pages). */
export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;
/** madvise's advice: back the range with transparent huge pages where the kernel can (Linux 2.6.38). */
const MADV_HUGEPAGE = 14;

/**
 * A zeroed array of `length` bytes whose memory starts on a huge-page boundary and is advised MADV_HUGEPAGE, so
 * the kernel backs it with 2 MiB pages on first touch (where transparent huge pages are `madvise` or `always`):
 * one fault per 2 MiB instead of 512. In a VM whose guest hands freed memory back to the host, each 4 KiB fault
 * costs ~10 us and the first touch from user space of a page the kernel filled ~4 us more; a 2 MiB read into
 * fresh memory then took 8 ms, into huge pages 0.3-0.5 ms (2026-12-04). For buffers reused through a long copy.
 *
 * The ArrayBuffer reserves one huge page more than it needs (address space, not memory: the pages outside the
 * view are never touched) so that the view can start on the boundary. Undefined where the call is not available
 * (not Linux, no koffi) or the kernel refuses the advice: the caller allocates as usual.
 */
export function hugePageBytes(length: number): Uint8Array | undefined {
  const load = loadLibc();
  if (!load.ok || length <= 0) return undefined;
  const { libc } = load;
  const span = Math.ceil(length / HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES;
  const whole = new Uint8Array(span + HUGE_PAGE_BYTES);
  const address = libc.addressOf(whole);
  const offset = (HUGE_PAGE_BYTES - (address % HUGE_PAGE_BYTES)) % HUGE_PAGE_BYTES;
  // Nothing has touched the memory yet (a fresh zeroed allocation this large is a fresh mapping): the advice
  // comes before the first fault.
  if (libc.madvise(address + offset, span, MADV_HUGEPAGE) !== 0) return undefined;
  return whole.subarray(offset, offset + length);
}
