import { DiskError, type BlockStatus, type DiskErrorCode } from '@q/raw';
import type { OpenDiskOptions } from './open-disk.js';

/**
 * Messages between a cothread disk (the event loop's side) and its worker (which owns the image and does the
 * blocking I/O). Buffers travel as transferred ArrayBuffers: one copy on each side, no structured-clone walk.
 */
export interface CothreadStart {
  spec: string;
  options: Omit<OpenDiskOptions, 'codecs'>;
}

export type CothreadRequest =
  | { id: number; op: 'read'; offset: number; length: number }
  | { id: number; op: 'write'; offset: number; data: ArrayBuffer; fua: boolean }
  | { id: number; op: 'writeZeroes'; offset: number; length: number; unmap: boolean }
  | { id: number; op: 'discard'; offset: number; length: number }
  | { id: number; op: 'flush' }
  | { id: number; op: 'blockStatus'; offset: number; length: number }
  | { id: number; op: 'close' };

export type CothreadReply =
  | { id: number; ok: true; data?: ArrayBuffer; extents?: BlockStatus[] }
  | { id: number; ok: false; error: SerializedError };

/** The first message from the worker: the device it opened, or why it could not. */
export type CothreadReady =
  | { ready: true; name: string; format: string; size: number; readOnly: boolean }
  | { ready: false; error: SerializedError };

export interface SerializedError {
  code?: DiskErrorCode;
  message: string;
  file?: string;
  offset?: number;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof DiskError) return { code: error.code, message: error.message, file: error.file, offset: error.offset };
  return { message: error instanceof Error ? error.message : String(error) };
}

/** A DiskError again on the event loop's side (other errors become E_IO: the worker's trace is not ours). */
export function deserializeError(error: SerializedError): DiskError {
  return new DiskError(error.code ?? 'E_IO', error.message, { file: error.file, offset: error.offset });
}
