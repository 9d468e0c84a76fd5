import { DiskError } from './errors.js';

/**
 * A virtual disk as its users see it: a fixed number of bytes that can be read, and a map saying where those bytes
 * come from. Raw files and qcow2 images both implement it; a backing chain is a device whose `backing` is another.
 */
export interface BlockDevice {
  /** The name the user gave (a path, `path@snapshot`). */
  readonly name: string;
  /** `raw` or `qcow2`, as qemu-img names formats. */
  readonly format: string;
  /** Virtual size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** The device whose bytes show through ranges this one leaves unallocated. */
  readonly backing: BlockDevice | undefined;
  /** Fills `dst` with the guest bytes at `offset`; the range must lie inside the device. */
  read(dst: Uint8Array, offset: number): Promise<void>;
  /**
   * Describes `[offset, offset + length)` in this layer only, as consecutive extents covering the whole range
   * (clipped to the device size). Unallocated extents fall through to `backing`.
   */
  blockStatus(offset: number, length: number): Promise<BlockStatus[]>;
  /**
   * Writes guest bytes (E_READ_ONLY on a read-only device). Once the promise resolves `src` is the caller's
   * again: nothing reads it afterwards (an NBD server reuses its payload buffers).
   */
  write(src: Uint8Array, offset: number): Promise<void>;
  /** Makes the range read as zeros; `unmap` lets the device release the space. */
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  /** Advisory: the range's contents are no longer needed (it may read as zeros or as before). */
  discard(offset: number, length: number): Promise<void>;
  /** Makes every completed write durable. */
  flush(): Promise<void>;
  /** Flushes (when writable) and releases the device and everything below it. */
  close(): Promise<void>;
}

export interface WriteZeroesOptions {
  /** The device may release the space (QEMU's MAY_UNMAP; NBD without NO_HOLE). */
  unmap?: boolean;
  /**
   * Only if it is cheaper than writing zeros (metadata only): otherwise fail with E_UNSUPPORTED and change nothing,
   * so the caller can choose (NBD's FAST_ZERO, QEMU's NO_FALLBACK).
   */
  fast?: boolean;
}

/** One run of guest bytes with the same allocation state in one layer. */
export interface BlockStatus {
  offset: number;
  length: number;
  /**
   * `data`: bytes stored in this layer; `zero`: this layer says they read as zeros; `unallocated`: this layer has
   * nothing, so they come from the backing device (or are zeros when there is none).
   */
  kind: 'data' | 'zero' | 'unallocated';
  /** Where the bytes lie in `hostFile` when they are stored plainly (not compressed). */
  hostOffset?: number;
  /** The file holding the bytes at `hostOffset` (the image, or its external data file). */
  hostFile?: string;
  /** The bytes are stored compressed (no host offset to give). */
  compressed?: boolean;
  /**
   * The host bytes at `hostOffset` are a hole in `hostFile` (punched, or never written). On a `data` extent they
   * read as zeros although this layer maps them as stored (qemu-img map: `"zero": true` with `"data": true`); on a
   * `zero` extent (a raw file's hole) nothing is stored at all (NBD: HOLE as well as ZERO).
   */
  hole?: boolean;
}

/** Throws E_READ_ONLY for a change to a read-only device. */
export function checkWritable(device: { name: string; readOnly: boolean }): void {
  if (device.readOnly) throw new DiskError('E_READ_ONLY', 'Block node is read-only', { file: device.name });
}

/** Throws unless `[offset, offset + length)` lies inside a device of `size` bytes. */
export function checkRange(device: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > device.size) {
    throw new DiskError('E_INVALID', `request at offset ${offset} length ${length} is outside the device (${device.size} bytes)`, {
      file: device.name,
      offset,
    });
  }
}
