import { HUGE_PAGE_BYTES, hugePageBytes } from '@q/posix';
import { alignedBytes } from '@q/raw';

const PAGE_BYTES = 4096;

/**
 * `count` zeroed, page-aligned buffers of `bytes` each for a copy that reuses them throughout, carved from one
 * allocation in huge pages where the platform gives them (hugePageBytes), else allocated one by one (alignedBytes).
 * On this kind of VM every fresh 4 KiB page costs ~10 us to fault in and ~4 us more at the first touch from user
 * space after the kernel filled it: the 8 MiB of a convert's chunk buffers were ~30 ms of a 1 GiB conversion that
 * qemu-img does in 300 ms. Huge pages fault once per 2 MiB.
 */
export function copyBuffers(count: number, bytes: number): Uint8Array[] {
  const stride = Math.ceil(bytes / PAGE_BYTES) * PAGE_BYTES;
  // Less than a huge page in all would leave most of one untouched but resident: not worth it.
  const slab = count * stride >= HUGE_PAGE_BYTES ? hugePageBytes(count * stride) : undefined;
  return Array.from({ length: count }, (_, i) => slab?.subarray(i * stride, i * stride + bytes) ?? alignedBytes(bytes));
}

/** Buffers of `bytes` each, a huge page's worth of them (at least one): for a pool that grows as a copy needs. */
export function copyBufferBatch(bytes: number): Uint8Array[] {
  return copyBuffers(Math.max(1, Math.floor(HUGE_PAGE_BYTES / bytes)), bytes);
}
