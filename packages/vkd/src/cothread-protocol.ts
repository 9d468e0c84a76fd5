import { DiskError, isDiskError, type BlockStatus, type DiskErrorCode } from '@q/raw';
import type { OpenDiskOptions } from './open-disk.js';

/**
 * Messages between a cothread disk (the event loop's side) and its worker (which owns the image and does the
 * blocking I/O). Requests and plain completions go through the shared ring (cothread-ring.ts); messages carry
 * the start, the worker's first answer, and replies with more than a status.
 */
export interface CothreadStart {
  spec: string;
  options: Omit<OpenDiskOptions, 'codecs' | 'store'>;
  ring: SharedArrayBuffer;
  /** The URL of a module whose `createStore()` makes the worker's store (CothreadOptions.storeModule). */
  storeModule?: string;
}

/** The reply of a slot completed with STATUS_MESSAGE. */
export interface CothreadMessage {
  slot: number;
  reply: { ok: true; extents: BlockStatus[] } | { ok: false; error: SerializedError };
}

/** One layer of the opened chain, top first. */
export interface CothreadLayer {
  name: string;
  format: string;
  size: number;
  readOnly: boolean;
}

/** The first message from the worker: the device it opened (its chain), or why it could not. */
export type CothreadReady =
  | { ready: true; layers: CothreadLayer[] }
  | { ready: false; error: SerializedError };

export interface SerializedError {
  code?: DiskErrorCode;
  message: string;
  file?: string;
  offset?: number;
}

export function serializeError(error: unknown): SerializedError {
  if (isDiskError(error)) return { code: error.code, message: error.message, file: error.file, offset: error.offset };
  return { message: error instanceof Error ? error.message : String(error) };
}

/** A DiskError again on the event loop's side (other errors become E_IO: the worker's trace is not ours). */
export function deserializeError(error: SerializedError): DiskError {
  return new DiskError(error.code ?? 'E_IO', error.message, { file: error.file, offset: error.offset });
}
