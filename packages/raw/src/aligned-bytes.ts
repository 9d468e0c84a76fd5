/**
 * Buffers for bulk reads whose first byte sits at the start of a memory page.
 *
 * Why: a read from the page cache (tmpfs, or any cached file) is a kernel copy from a page-aligned source into
 * the caller's buffer, and on this project's benchmark machine (AMD EPYC, `rep movsb` with FSRM) that copy runs
 * about four times slower when the destination starts 1-31 bytes past a 4 KiB boundary: 1 MiB reads from tmpfs
 * took 0.66 ms each instead of 0.18 ms (strace -T). Measured by reading 128 MiB into views at each offset of a
 * page-aligned memory: offsets 1-31 cost 80-96 ms, every other offset 20-22 ms; writes showed no difference.
 *
 * A plain `new Uint8Array(1 << 20)` lands exactly there: Node takes large arrays from glibc's malloc, which maps
 * them on their own and hands out the map's start plus its 16-byte chunk header. So the array is made one page
 * longer and the view starts one page minus that header in, on the next page. Where the allocator put the array
 * elsewhere (glibc serves sizes it has seen freed from its heap, at a 16-byte multiple; other allocators), the
 * view lands on a random 16-byte multiple, which is as likely to be slow as any plain array (1 in 256).
 *
 * (A WebAssembly memory starts on a page whatever the allocator, but V8 reserves 10 GiB of address space for each,
 * shared with the embedder's own WebAssembly: too much for a buffer.)
 */
const PAGE_BYTES = 4096;
/** glibc's header in front of a chunk it maps on its own (two size words on 64-bit systems). */
const MALLOC_MAPPED_HEADER = 16;
/** Where the view starts in its array (see above). */
export const ALIGNED_VIEW_OFFSET = PAGE_BYTES - MALLOC_MAPPED_HEADER;
/** Below this an array comes from the heap, not a map of its own: no alignment to gain. */
export const ALIGNED_MIN_BYTES = 64 * 1024;

/** A zeroed buffer of `length` bytes that starts on a page where the allocator allows (see above). */
export function alignedBytes(length: number): Uint8Array {
  if (length < ALIGNED_MIN_BYTES) return new Uint8Array(length);
  return new Uint8Array(new ArrayBuffer(length + ALIGNED_VIEW_OFFSET), ALIGNED_VIEW_OFFSET, length);
}
