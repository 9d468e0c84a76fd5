import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { BlockFile } from '@q/raw';
import { imageFileLocks, toolUser } from '@q/vkd';
import { cliBlockingStore, cliStore, cliTargetStore } from './cli-store.js';
import { dataRuns } from './zero-detect.js';
import { ExitError } from './usage-error.js';
import { layOutRawFile, type RawPreallocation } from './raw-file-layout.js';

/** Where convert puts raw bytes: a sparse file (any order) or a stream (in order, zeros written out). */
export interface RawTarget {
  /** Writes guest bytes at `offset`; when it resolves, `bytes` may be reused. */
  write(bytes: Uint8Array, offset: number): Promise<void>;
  /** The range reads as zeros in the source. */
  zero(offset: number, length: number): Promise<void>;
  /** Whether writes may come in any order (files) or must come in order (streams). */
  readonly ordered: boolean;
  close(): Promise<void>;
}

export interface RawFileTargetOptions {
  /** Write into the existing file (`-n`) instead of creating it: its old bytes must be overwritten, zeros too. */
  existing: boolean;
  /**
   * `--target-is-zero` (with `-n`): the caller vouches that the existing file reads as zeros, so it is treated as a
   * fresh one: zero ranges and all-zero blocks are not written (qemu-img skips them too; with `-S 0` it writes all).
   */
  targetIsZero?: boolean;
  /** Skip all-zero blocks of data (`-S 0` turns this off). */
  sparse: boolean;
  /** Make the file durable (fdatasync) at close: every cache mode but qemu-img convert's default, unsafe. */
  sync: boolean;
  /**
   * Write with blocking calls on this thread (cliBlockingStore: cheaper than a trip to the thread pool when this
   * thread has little else to do), or from the pool, for a source whose decompression keeps this thread busy: the
   * writes then run beside it. convert -O raw of the 2 GiB zstd image: 2.05 -> 1.91 s in /dev/shm, 2.28 -> 2.06 s
   * on ext4; zlib in /dev/shm 2.89 -> 2.61 s (medians of 5, 5, 3).
   */
  blocking: boolean;
  /** A fresh file's preallocation (`-o preallocation=`; default off: a hole but for its first block). */
  preallocation?: RawPreallocation;
}

/**
 * A raw file target (a local file, or an NBD export with `-n`). A fresh file is laid out as qemu-img creates one
 * (a hole of the right size but for its first block, unless preallocated), so zero ranges and all-zero blocks are
 * simply not written (the sparse result qemu-img gives); an existing file (`-n`) gets its zeros written, unless
 * `--target-is-zero` says it reads zeros already.
 */
export async function openRawFileTarget(path: string, size: number, options: RawFileTargetOptions): Promise<RawTarget> {
  const { existing, sparse } = options;
  const readsZeros = !existing || options.targetIsZero === true;
  // A target flushed at the end writes behind (cliTargetStore); one that is not (-t unsafe) leaves the kernel be.
  const store = options.sync ? cliTargetStore(options.blocking ? 'always' : false) : options.blocking ? cliBlockingStore() : cliStore();
  const file: BlockFile = await store.open(path, { writable: true, create: !existing, truncate: !existing, lock: imageFileLocks('raw', toolUser(true), true, false) });
  if (!existing) await layOutRawFile(file, size, options.preallocation ?? 'off');
  // qemu-img refuses a target too small for the source (its size counted in whole 512-byte sectors, as QEMU sees it).
  else if (Math.ceil((await file.size()) / 512) * 512 < size) {
    await file.close();
    throw new ExitError('output file is smaller than input file', 1);
  }
  const zeros = new Uint8Array(1 << 20);
  return {
    ordered: false,
    async write(bytes, offset) {
      if (!readsZeros || !sparse) return file.write(bytes, offset);
      await Promise.all(dataRuns(bytes).map(([start, end]) => file.write(bytes.subarray(start, end), offset + start)));
    },
    async zero(offset, length) {
      // A fresh sparse file (or one vouched for by --target-is-zero) already reads zeros there; an old file or a
      // fully allocated one (-S 0) gets them written.
      if (readsZeros && sparse) return;
      for (let at = 0; at < length; at += zeros.length) {
        await file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
      }
    },
    async close() {
      if (options.sync) await file.flush();
      await file.close();
    },
  };
}

/** Creates (or empties) a raw file and leaves it empty: what qemu-img leaves of a refused `preallocation=metadata`. */
export async function createEmptyRawFile(path: string): Promise<void> {
  const file = await cliStore().open(path, { writable: true, create: true, truncate: true, lock: imageFileLocks('raw', toolUser(true), true, false) });
  await file.close();
}

/** A stream target (stdout): every byte in order, zeros included, respecting back-pressure. */
export function streamTarget(stream: Writable): RawTarget {
  const zeros = new Uint8Array(1 << 20);
  // Resolving on the write callback (not on 'drain') is what lets the caller reuse the buffer.
  const write = (bytes: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) => stream.write(bytes, (error) => (error ? reject(error) : resolve())));
  return {
    ordered: true,
    write: (bytes) => write(bytes),
    async zero(_offset, length) {
      for (let at = 0; at < length; at += zeros.length) await write(zeros.subarray(0, Math.min(zeros.length, length - at)));
    },
    async close() {
      if (stream.writableNeedDrain) await once(stream, 'drain');
    },
  };
}
