import { chainStatus, type ChainExtent } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import { copyBuffers } from './copy-buffers.js';
import type { RawTarget } from './raw-target.js';

export interface CopyOptions {
  /** Chunks read at once (qemu-img convert's -m, default 8). */
  parallel: number;
  /** Bytes per read. */
  chunkBytes: number;
  /**
   * Bytes per read (at most chunkBytes) when the source stores data compressed: decompressing takes the time
   * there, not the read, so smaller reads cost nothing and need smaller chunk buffers (convert -O raw of a 2 GiB
   * zstd image: peak RSS 137 -> 94 MiB with 1 MiB reads of compressed data; its arrayBuffers at the peak 42 -> 18
   * MiB with 1 MiB buffers for its plain clusters too; 256 KiB reads: arrayBuffers 27 -> 8 MiB, peak RSS with the
   * other changes of that day 103 -> 70 MiB, user time 0-15% more). Plain data alone goes in chunkBytes: 8% slower
   * per halving on tmpfs.
   */
  compressedChunkBytes?: number;
  onProgress?(done: number, total: number): void;
}

/** Allocation is looked up a window at a time: memory follows the extents in a window, not the disk size. */
const STATUS_WINDOW = 2 ** 30;
/**
 * The window after one denser than DENSE_EXTENTS extents per STATUS_WINDOW (compressed clusters are an extent each:
 * 16k objects per GiB, 5 MiB of heap that survive their window's copy and made V8 grow its heap). A source of few
 * extents keeps 1 GiB windows: a sparse 16 TiB image costs 16k lookups, not 262k.
 */
const DENSE_WINDOW = 2 ** 26;
const DENSE_EXTENTS = 4096;

/** What copyDevice learns first about a source: the allocation of its first window. */
export interface SourceSurvey {
  firstWindow: ChainExtent[];
  /**
   * Whether the first window stores data compressed: then the copy goes in compressedChunkBytes, and decompressing
   * on this thread takes most of its time, so the target is better written from the thread pool (raw-target.ts).
   */
  compressed: boolean;
}

export async function surveySource(source: BlockDevice): Promise<SourceSurvey> {
  const firstWindow = await chainStatus(source, 0, Math.min(STATUS_WINDOW, source.size));
  return { firstWindow, compressed: firstWindow.some((extent) => extent.compressed) };
}

/** A place in the line of writers: wait for `ready`, write, then `release` (always, even after a failure). */
interface Turn {
  ready: Promise<void>;
  release(): void;
}

/** Hands out turns in the order they are asked for; each becomes ready when the one before is released. */
function turnQueue(): () => Turn {
  let tail: Promise<void> = Promise.resolve();
  return () => {
    const ready = tail;
    let release!: () => void;
    tail = new Promise<void>((resolve) => (release = resolve));
    return { ready, release };
  };
}

/**
 * Copies every guest byte of `source` to `target`. Ranges the chain says read as zeros are never read (a 16 TiB
 * sparse image costs only its metadata walk). Data is read in chunks, several at once, but written one chunk at a
 * time: concurrent writes into one file contend in the kernel and cost more than they overlap. A stream target
 * takes its turns in launch order (so bytes come out in order); a file takes them as reads finish.
 */
export async function copyDevice(source: BlockDevice, target: RawTarget, options: CopyOptions, survey?: SourceSurvey): Promise<void> {
  const { firstWindow, compressed } = survey ?? (await surveySource(source));
  // A source with compressed data (qemu-img convert -c writes some clusters plain, where compressing saved
  // nothing) goes in small chunks throughout, so every chunk buffer stays small.
  const chunkBytes = compressed ? Math.min(options.chunkBytes, options.compressedChunkBytes ?? Infinity) : options.chunkBytes;
  // Chunk buffers are reused: allocating megabytes per chunk costs page faults and zero-filling on every read.
  // Page-aligned: the kernel copies reads from the page cache into them at full speed; in huge pages where the
  // platform has them (copyBuffers).
  const buffers = copyBuffers(options.parallel, chunkBytes);
  const nextTurn = turnQueue();
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let done = 0;
  /** Extents per byte of the last window. */
  let density = firstWindow.length / Math.min(STATUS_WINDOW, source.size);

  const launch = async (length: number, task: () => Promise<void>): Promise<void> => {
    while (inflight.size >= options.parallel) await Promise.race(inflight);
    if (failure !== undefined) throw failure.error;
    const running = task().then(
      () => {
        done += length;
        options.onProgress?.(done, source.size);
      },
      (error: unknown) => {
        failure ??= { error };
      },
    );
    inflight.add(running);
    void running.finally(() => inflight.delete(running));
  };

  /** Writes in turn; an ordered target reserved its turn before reading. */
  const inTurn = async (reserved: Turn | undefined, write: () => Promise<void>): Promise<void> => {
    const turn = reserved ?? nextTurn();
    try {
      await turn.ready;
      await write();
    } finally {
      turn.release();
    }
  };

  let windowBytes = STATUS_WINDOW;
  for (let window = 0; window < source.size; window += windowBytes) {
    if (window > 0) windowBytes = density * STATUS_WINDOW > DENSE_EXTENTS ? DENSE_WINDOW : STATUS_WINDOW;
    const extents = window === 0 ? firstWindow : await chainStatus(source, window, Math.min(windowBytes, source.size - window));
    density = extents.length / Math.min(windowBytes, source.size - window);
    for (const extent of extents) {
      const end = extent.offset + extent.length;
      if (extent.zero) {
        await launch(extent.length, () => inTurn(target.ordered ? nextTurn() : undefined, () => target.zero(extent.offset, extent.length)));
        continue;
      }
      for (let offset = extent.offset; offset < end; ) {
        // Chunk boundaries fall on multiples of the chunk size, so reads line up with clusters.
        const chunkEnd = Math.min(end, (Math.floor(offset / chunkBytes) + 1) * chunkBytes);
        const at = offset;
        await launch(chunkEnd - at, async () => {
          const reserved = target.ordered ? nextTurn() : undefined;
          const buffer = buffers.pop()!;
          try {
            const bytes = buffer.subarray(0, chunkEnd - at);
            try {
              await source.read(bytes, at);
            } catch (error) {
              reserved?.release();
              throw error;
            }
            await inTurn(reserved, () => target.write(bytes, at));
          } finally {
            buffers.push(buffer);
          }
        });
        offset = chunkEnd;
      }
    }
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure.error;
}
