import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import type { RawTarget } from './raw-target.js';

export interface CopyOptions {
  /** Chunks read at once (qemu-img convert's -m, default 8). */
  parallel: number;
  /** Bytes per read. */
  chunkBytes: number;
  onProgress?(done: number, total: number): void;
}

/** Allocation is looked up a window at a time: memory follows the extents in a window, not the disk size. */
const STATUS_WINDOW = 2 ** 30;

/**
 * Copies every guest byte of `source` to `target`. Ranges the chain says read as zeros are never read (a 16 TiB
 * sparse image costs only its metadata walk); data is read in chunks, several in flight, and written in order
 * when the target needs it.
 */
export async function copyDevice(source: BlockDevice, target: RawTarget, options: CopyOptions): Promise<void> {
  // Chunk buffers are reused: allocating megabytes per chunk costs page faults and zero-filling on every read.
  const buffers = Array.from({ length: options.parallel }, () => new Uint8Array(options.chunkBytes));
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let previousWrite: Promise<void> = Promise.resolve();
  let done = 0;

  const launch = async (task: (previous: Promise<void>) => Promise<void>, length: number): Promise<void> => {
    while (inflight.size >= options.parallel) await Promise.race(inflight);
    if (failure !== undefined) throw failure.error;
    const previous = previousWrite;
    const running = task(target.ordered ? previous : Promise.resolve()).then(
      () => {
        done += length;
        options.onProgress?.(done, source.size);
      },
      (error: unknown) => {
        failure ??= { error };
      },
    );
    previousWrite = running;
    inflight.add(running);
    void running.finally(() => inflight.delete(running));
  };

  for (let window = 0; window < source.size; window += STATUS_WINDOW) {
    const extents = await chainStatus(source, window, Math.min(STATUS_WINDOW, source.size - window));
    for (const extent of extents) {
      const end = extent.offset + extent.length;
      if (extent.zero) {
        await launch(async (previous) => {
          await previous;
          await target.zero(extent.offset, extent.length);
        }, extent.length);
        continue;
      }
      for (let offset = extent.offset; offset < end; ) {
        // Chunk boundaries fall on multiples of the chunk size, so reads line up with clusters.
        const chunkEnd = Math.min(end, (Math.floor(offset / options.chunkBytes) + 1) * options.chunkBytes);
        const at = offset;
        await launch(async (previous) => {
          const buffer = buffers.pop()!;
          try {
            const bytes = buffer.subarray(0, chunkEnd - at);
            await source.read(bytes, at);
            await previous;
            await target.write(bytes, at);
          } finally {
            buffers.push(buffer);
          }
        }, chunkEnd - at);
        offset = chunkEnd;
      }
    }
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure.error;
}
