import type { BlockFile } from '@q/raw';
import { ExitError } from './usage-error.js';

/** The preallocation modes of a raw file (qemu-img's `-o preallocation=` and `--preallocation`). */
export type RawPreallocation = 'off' | 'falloc' | 'full';

/** How much of a new raw file qemu-img writes at its start (its file layer's first block, zeros). */
const FIRST_BLOCK = 4096;
const ZERO_CHUNK = 1 << 20;

/**
 * A raw file's preallocation mode, judged as qemu-img judges it. `metadata` means nothing to a raw file: qemu-img
 * refuses it, but only after it created the file, empty (`emptyFirst` says so; the caller creates it, then
 * throws). Anything else unknown is refused before any file exists. `prefix`: what qemu-img puts before the
 * reason ("FILE: " for create, "FILE: error while converting raw: " for convert).
 */
export function rawPreallocation(value: string | undefined, prefix: string): { mode: RawPreallocation } | { refusal: ExitError; emptyFirst: boolean } {
  const mode = value ?? 'off';
  if (mode === 'off' || mode === 'falloc' || mode === 'full') return { mode };
  if (mode === 'metadata') return { refusal: new ExitError(`${prefix}Unsupported preallocation mode: metadata`, 1), emptyFirst: true };
  return { refusal: new ExitError(`${prefix}invalid parameter value: ${mode}`, 1), emptyFirst: false };
}

/**
 * Lays out a new, empty raw file as qemu-img does: `size` bytes, reserved (falloc: fallocate, or zeros written
 * where the file system cannot) or written (full) as asked, and in any case its first 4 KiB written with zeros
 * (QEMU allocates the first block of every raw file it creates, so that probing its alignment later finds data:
 * `qemu-img map` shows that block as data and `du` counts it).
 */
export async function layOutRawFile(file: BlockFile, size: number, preallocation: RawPreallocation): Promise<void> {
  await file.truncate(size);
  await allocateRange(file, 0, size, preallocation);
  if (preallocation !== 'full' && size > 0) await file.write(new Uint8Array(Math.min(size, FIRST_BLOCK)), 0);
}

/**
 * Gives `[offset, offset + length)` of a raw file its storage as `preallocation` asks: falloc reserves the blocks
 * (zeros written where that is impossible), full writes zeros, off leaves a hole. The file must reach that far.
 */
export async function allocateRange(file: BlockFile, offset: number, length: number, preallocation: RawPreallocation): Promise<void> {
  if (preallocation === 'off' || length <= 0) return;
  if (preallocation === 'falloc' && (await file.reserve?.(offset, length)) === true) return;
  const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
  for (let at = 0; at < length; at += zeros.length) await file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
}
