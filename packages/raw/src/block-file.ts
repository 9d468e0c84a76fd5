import { DiskError } from './errors.js';
import type { LockPermissions } from './lock-permissions.js';

/**
 * The I/O port every layer reads and writes through: a random-access byte store. Adapters exist for Node files
 * and memory; anything with positional reads can be one (a browser File, HTTP range requests).
 */
export interface BlockFile {
  /** How the user named the store, for error messages. */
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  /** Reads up to `dst.length` bytes at `offset` into `dst`; returns how many were read (fewer only at EOF). */
  read(dst: Uint8Array, offset: number): Promise<number>;
  /** Writes all of `src` at `offset`, extending the store when needed. */
  write(src: Uint8Array, offset: number): Promise<void>;
  /** Makes every completed write durable (fdatasync for files). */
  flush(): Promise<void>;
  /** Current length in bytes. */
  size(): Promise<number>;
  /** Sets the length; growing reads back as zeros. */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Gives the space of `length` bytes at `offset` back to the store (a hole is punched): the range reads as zeros
   * afterwards. Resolves false when the store cannot, and the bytes are then unchanged. Only where
   * `capabilities.deallocate` says so; a writer frees clusters and discards through it, so `du` drops as with QEMU.
   */
  deallocate?(offset: number, length: number): Promise<boolean>;
  /**
   * Reserves the storage of `length` bytes at `offset` without writing them (fallocate): the file grows to cover
   * the range, what it held stays, new bytes read as zeros. Resolves false when the store cannot (nothing changed):
   * the caller writes zeros instead if it must have the space. qemu-img's `preallocation=falloc`.
   */
  reserve?(offset: number, length: number): Promise<boolean>;
  /**
   * Whether the bytes at `offset` are stored (`data`) or a hole that reads as zeros, and for how many bytes from
   * `offset` (at most `length`). Optional: a store that cannot tell says nothing, and callers treat it as data.
   */
  runAt?(offset: number, length: number): Promise<FileRun>;
  /**
   * Bytes of storage the store occupies (a file's allocated blocks, what `du` and qemu-img's actual-size count).
   * Optional: a store that cannot tell says nothing.
   */
  allocatedSize?(): Promise<number>;
  /**
   * Takes QEMU's image locks for `permissions` (dropping those this open held) for as long as it stays open, so
   * QEMU and other processes refuse what conflicts with it; a conflict they hold is E_LOCKED in QEMU's words.
   * Only where `capabilities.lock` says so: a store that cannot lock never pretends to.
   */
  lock?(permissions: LockPermissions): void | Promise<void>;
}

/** A run of a store's bytes: stored data, or a hole that reads as zeros without being stored. */
export interface FileRun {
  data: boolean;
  length: number;
}

export interface BlockFileCapabilities {
  readonly writable: boolean;
  /** Unwritten ranges cost no space and read as zeros (so skipping zero writes is safe and cheap). */
  readonly sparse: boolean;
  /** `deallocate` punches holes here (Node files on Linux, on file systems that can). */
  readonly deallocate?: boolean;
  /** `lock` takes QEMU's image locks here (Node files on Linux). */
  readonly lock?: boolean;
}

/**
 * Reads exactly `dst.length` bytes; a short read is an E_PAST_EOF error naming the file. Use this for metadata,
 * where the mission is to refuse what QEMU would silently read as zeros.
 */
export async function readExact(file: BlockFile, dst: Uint8Array, offset: number, what = 'data'): Promise<void> {
  const got = await file.read(dst, offset);
  if (got !== dst.length) {
    throw new DiskError(
      'E_PAST_EOF',
      `${what} at offset ${offset} (${dst.length} bytes) runs past the end of the file (only ${got} bytes there)`,
      { file: file.name, offset },
    );
  }
}

/** Reads what exists and fills the rest with zeros: for the last, partial cluster of a file. */
export async function readPadded(file: BlockFile, dst: Uint8Array, offset: number): Promise<void> {
  const got = await file.read(dst, offset);
  if (got < dst.length) dst.fill(0, got);
}
