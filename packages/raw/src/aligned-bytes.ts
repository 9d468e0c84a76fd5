/**
 * Buffers for bulk I/O whose first byte sits at the start of a memory page.
 *
 * Why: a read from the page cache (tmpfs, or any cached file) is a kernel copy from a page-aligned source into
 * the caller's buffer, and on this project's benchmark machine (AMD EPYC, `rep movsb` with FSRM) that copy runs
 * four times slower when the destination starts 1-31 bytes past a 4 KiB boundary: 1 MiB reads from tmpfs took
 * 0.66 ms each instead of 0.18 ms (strace -T). A `new Uint8Array(1 << 20)` lands exactly there: the engine's
 * allocator takes large arrays from glibc's malloc, which maps them and hands out the map's start plus its
 * 16-byte chunk header. (Measured by reading 128 MiB into views at each offset of a page-aligned memory: offsets
 * 1-31 cost 80-96 ms, every other offset 20-22 ms; writes showed no difference.)
 *
 * A WebAssembly memory is mapped on its own and starts on a page, in Node and in browsers, and its buffer is an
 * ordinary ArrayBuffer. Small buffers stay ordinary arrays: they come from the heap at a random 16-byte
 * position (one in 256 lands in the slow band) and a memory's 64 KiB page granularity would waste most of them.
 */
const WASM_PAGE_BYTES = 64 * 1024;

/** The part of the WebAssembly API used here (core packages build without DOM or Node types). */
interface WasmMemoryConstructor {
  new (descriptor: { initial: number; maximum: number; shared?: boolean }): { readonly buffer: ArrayBuffer | SharedArrayBuffer };
}
const WasmMemory = (globalThis as { WebAssembly?: { Memory?: WasmMemoryConstructor } }).WebAssembly?.Memory;
/** Below this an aligned buffer is not worth a memory of its own. */
export const ALIGNED_MIN_BYTES = 64 * 1024;

/** A zeroed buffer of `length` bytes starting on a page boundary when it is large enough to matter. */
export function alignedBytes(length: number): Uint8Array {
  if (length >= ALIGNED_MIN_BYTES && WasmMemory !== undefined) {
    const pages = Math.ceil(length / WASM_PAGE_BYTES);
    try {
      // A fixed maximum: the memory never grows (growing would detach every view handed out).
      return new Uint8Array(new WasmMemory({ initial: pages, maximum: pages }).buffer as ArrayBuffer, 0, length);
    } catch {
      // Out of address space for memories, or WebAssembly disabled (a locked-down page): plain memory is slower, not wrong.
    }
  }
  return new Uint8Array(length);
}

/**
 * Shared memory of at least `length` bytes (rounded up to 64 KiB) that starts on a page: a shared WebAssembly
 * memory's buffer is a SharedArrayBuffer mapped on its own, where a plain one of this size comes from malloc, 16
 * bytes past a page. A plain one where WebAssembly (or shared memory for it) is unavailable.
 */
export function alignedSharedBuffer(length: number): SharedArrayBuffer {
  const pages = Math.ceil(length / WASM_PAGE_BYTES);
  if (WasmMemory !== undefined) {
    try {
      return new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer as SharedArrayBuffer;
    } catch {
      // As above.
    }
  }
  return new SharedArrayBuffer(pages * WASM_PAGE_BYTES);
}
