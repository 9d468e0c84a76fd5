/**
 * Plain (uncompressed) data is copied in chunks of qemu-img's size, 2 MiB, into any target, with at most
 * PLAIN_READS_IN_FLIGHT chunks read at once whatever `-m` asks. Fewer, smaller buffers are faster on this kind of VM:
 * every fresh page costs a fault, and 8 buffers of 4 MiB were 8k of them. Medians of 9-11 alternating runs
 * (2026-12-04, whole process, program without its code cache, qemu-img alongside):
 * - convert -O raw into /dev/shm, ext4-plain: 4 MiB x 8 465 ms, 2 MiB x 3 382, x 4 392-401, 1 MiB x 4 412
 *   (qemu-img 322-324); the 1 GiB random image: 4 MiB x 8 511, 2 MiB x 3 382, x 4 383 (qemu-img 322).
 * - the same into ext4 (source in the page cache): 1 MiB x 8 (the disk size then) 521 ms, 2 MiB x 2-4 332-429
 *   (qemu-img 295-411: noisy).
 * - convert -O qcow2 of the raw 2 GiB ext4 image into /dev/shm: 4 MiB x 8 512 ms, 2 MiB x 4 415 (qemu-img 353); into
 *   ext4: 1 MiB x 8 364, 2 MiB x 4 350 (qemu-img 296).
 * Peak RSS of convert -O raw: 88 -> 62 MiB (bench, medians of 7).
 */
export const PLAIN_CHUNK_BYTES = 2 * 1024 * 1024;

/** Plain chunks read at once (see PLAIN_CHUNK_BYTES): 3 and 4 measured alike; 4 keeps a cold disk's queue fuller. */
export const PLAIN_READS_IN_FLIGHT = 4;

/** The chunks a plain copy reads at once for qemu-img's `-m parallel` (1-16, default 8). */
export function plainReadsInFlight(parallel: number): number {
  return Math.min(parallel, PLAIN_READS_IN_FLIGHT);
}
