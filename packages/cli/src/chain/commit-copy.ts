import { chainStatus } from '@q/backing';
import { Qcow2Image } from '@q/qcow2';
import { RawDisk, type BlockDevice } from '@q/raw';
import { BufferPool } from './buffer-pool.js';
import { runQueue, splitRange } from './chunk-queue.js';

/**
 * Bytes copied per request, as QEMU's (see rebase-copy.ts). Chunks are aligned: one never straddles a cluster
 * another writes (with 2 MiB clusters two chunks share one, and the engine's cluster claims order their writes).
 */
const CHUNK_BYTES = 1024 * 1024;
const PARALLEL = 4;
const STATUS_WINDOW = 1 << 30;
const FIRST_STATUS_WINDOW = 32 << 20;

/** The layer commit writes into, opened writable: grown to the overlay's size, written, made durable. */
export interface CommitTarget {
  readonly size: number;
  grow(size: number): Promise<void>;
  write(src: Uint8Array, offset: number): Promise<void>;
  writeZeroes(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
}

/**
 * The base as a commit target. A qcow2 base grows through the engine and gets zero clusters (unmapped, as qemu-img
 * leaves them); a raw base is its file, which grows by truncation (RawDisk's size is fixed at open) and gets holes
 * where the file system can punch them.
 */
export function commitTarget(base: BlockDevice): CommitTarget {
  if (base instanceof Qcow2Image) {
    return {
      get size() {
        return base.size;
      },
      grow: (size) => base.resize(size),
      write: (src, offset) => base.write(src, offset),
      writeZeroes: (offset, length) => base.writeZeroes(offset, length, { unmap: true }),
      flush: () => base.flush(),
    };
  }
  if (!(base instanceof RawDisk)) throw new Error(`cannot commit into a ${base.format} image`);
  const file = base.file;
  let size = base.size;
  return {
    get size() {
      return size;
    },
    grow: async (wanted) => {
      await file.truncate(wanted);
      size = wanted;
    },
    write: (src, offset) => file.write(src, offset),
    writeZeroes: async (offset, length) => {
      if (file.capabilities.deallocate === true && (await file.deallocate?.(offset, length)) === true) return;
      const zeros = new Uint8Array(Math.min(length, CHUNK_BYTES));
      for (let at = 0; at < length; at += zeros.length) await file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
    },
    flush: () => file.flush(),
  };
}

/**
 * Copies into `target` everything the layers above it (depth < `baseDepth`) decide in `top`'s chain: their data
 * (read through the top, which shows exactly those bytes there) and their zeros (zero clusters, and ranges past
 * the end of a shorter layer in between) as zero writes. The base first grows to the top's size, as qemu-img
 * commit grows it; a range past the base's old end that the layers above leave to it already reads as zeros.
 */
export async function commitDown(top: BlockDevice, baseDepth: number, target: CommitTarget, onProgress?: (done: number, total: number) => void): Promise<void> {
  const size = top.size;
  const baseSize = target.size;
  if (baseSize < size) await target.grow(size);
  let done = 0;
  const progress = (bytes: number): void => {
    done += bytes;
    onProgress?.(done, size);
  };
  onProgress?.(0, size);
  const pool = new BufferPool(CHUNK_BYTES);
  await runQueue(commitJobs(top, baseDepth, baseSize, progress), PARALLEL, async ({ start, end, zero }) => {
    if (zero) await target.writeZeroes(start, end - start);
    else {
      await pool.with(async (buffer) => {
        const bytes = buffer.subarray(0, end - start);
        await top.read(bytes, start);
        await target.write(bytes, start);
      });
    }
    progress(end - start);
  });
}

/**
 * What commit copies, window by window as the chain is looked up, so the copy starts on the first window while the
 * rest is still being mapped (the whole map of a 1 GiB chain came before the first write: 20 ms of a 250 ms commit
 * in /dev/shm). The first window is small for that reason. Ranges the base decides (depth >= baseDepth) and zeros
 * it already shows are only counted as done.
 */
async function* commitJobs(top: BlockDevice, baseDepth: number, baseSize: number, skipped: (bytes: number) => void): AsyncGenerator<{ start: number; end: number; zero: boolean }> {
  const size = top.size;
  for (let window = 0, windowBytes = FIRST_STATUS_WINDOW; window < size; window += windowBytes, windowBytes = STATUS_WINDOW) {
    for (const extent of await chainStatus(top, window, Math.min(windowBytes, size - window))) {
      const end = extent.offset + extent.length;
      if (extent.depth >= baseDepth) {
        skipped(extent.length);
        continue;
      }
      // Data over a hole of the host file reads as zeros, but it is data: qemu-img commit reads and writes it, so
      // the base gets data clusters there too (a zero write would leave zero clusters where QEMU's has data).
      if (!extent.zero || extent.data) {
        for (const [start, stop] of splitRange(extent.offset, end, CHUNK_BYTES)) yield { start, end: stop, zero: false };
        continue;
      }
      // Zeros a layer above decides by leaving the range to a shorter layer: only the base's old bytes need hiding.
      const zeroEnd = extent.present ? end : Math.min(end, baseSize);
      if (zeroEnd > extent.offset) yield { start: extent.offset, end: zeroEnd, zero: true };
      skipped(end - zeroEnd);
    }
  }
}
