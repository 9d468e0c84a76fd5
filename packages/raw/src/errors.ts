/**
 * One error class for every layer, so a caller (the CLI, the NBD server) can turn any failure into one line
 * without knowing which package raised it. `code` is stable; `message` is for people: decide by `code` (and
 * `reason`), never by the text.
 */
export type DiskErrorCode =
  /** The underlying store failed (EIO, a short write, a closed handle). */
  | 'E_IO'
  /** A file (image, backing file, data file) does not exist or cannot be opened. */
  | 'E_NOT_FOUND'
  /** The bytes are not an image of the expected format (bad magic, bad version). */
  | 'E_BAD_FORMAT'
  /** A valid image that uses something this implementation does not do (encryption, unknown features). */
  | 'E_UNSUPPORTED'
  /** Metadata that contradicts itself or the format's rules. */
  | 'E_CORRUPT'
  /** Metadata that points past the end of the file. QEMU reads such data as zeros; we refuse. */
  | 'E_PAST_EOF'
  /** A table or count larger than QEMU's own limits (a lying header must not make us allocate). */
  | 'E_TOO_LARGE'
  /** Backing chain loops back on itself or is deeper than the limit. */
  | 'E_BACKING_CHAIN'
  /** A write or other change to something opened read-only. */
  | 'E_READ_ONLY'
  /** A request outside the device, or an argument that makes no sense. */
  | 'E_INVALID'
  /** A named snapshot, bitmap or other object that does not exist. */
  | 'E_NO_SUCH'
  /** Another process holds the file (an exclusive lock for writing could not be taken). */
  | 'E_LOCKED'
  /** A request refused by policy, not by the device's state (a probed raw image's first sector): EPERM. */
  | 'E_NOT_PERMITTED';

/**
 * A finer classification under a code, for the few decisions a code alone cannot make. Each reason names what is
 * wrong; its doc says what follows from it.
 */
export type DiskErrorReason =
  /**
   * (E_CORRUPT) A compressed cluster's bytes do not decompress to one cluster. The mapping metadata is sound:
   * QEMU fails the read with EIO and leaves the image unmarked, and so does the engine.
   */
  | 'compressed-data'
  /**
   * (E_CORRUPT) A compressed cluster descriptor puts its data where no data can be (in the header or other
   * metadata, beyond 2^53). QEMU reads there, fails to decompress (EIO) and leaves the image unmarked; so does the
   * engine.
   */
  | 'compressed-offset'
  /**
   * (any code) The image's backing file did not open; `cause` is that failure (itself a 'backing-open' one when the
   * failure lies further down the chain). The code is the cause's, so callers decide as they would for the file.
   */
  | 'backing-open';

export interface DiskErrorOptions {
  /** The file the problem is in, as the user named it. */
  file?: string;
  /** The byte offset (in the file, or in the guest for request errors) the problem concerns. */
  offset?: number;
  /** What exactly is wrong, where the code alone does not decide what a caller must do. */
  reason?: DiskErrorReason;
  cause?: unknown;
}

/**
 * The brand every DiskError carries. `Symbol.for` gives the same symbol to every copy of this module, so two
 * installed copies of `@q/raw` (a consumer with mismatched versions) recognise each other's errors, which
 * `instanceof` cannot: each copy has its own class.
 */
const DISK_ERROR_BRAND: unique symbol = Symbol.for('@q/raw:DiskError');

export class DiskError extends Error {
  override readonly name = 'DiskError';
  readonly code: DiskErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly reason: DiskErrorReason | undefined;
  /** See DISK_ERROR_BRAND: what `isDiskError` looks for instead of the class. */
  declare readonly [DISK_ERROR_BRAND]: true;

  constructor(code: DiskErrorCode, message: string, options: DiskErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // Not enumerable: the brand stays out of spreads, JSON and printed errors.
    Object.defineProperty(this, DISK_ERROR_BRAND, { value: true });
    this.code = code;
    this.file = options.file;
    this.offset = options.offset;
    this.reason = options.reason;
  }

  /** The same error attributed to a file, for errors raised below the layer that knows the name. */
  withFile(file: string): DiskError {
    if (this.file !== undefined) return this;
    const copy = new DiskError(this.code, this.message, { file, offset: this.offset, reason: this.reason, cause: this.cause });
    copy.stack = this.stack;
    return copy;
  }
}

/**
 * Whether `error` is a DiskError from any copy of this package: it carries the brand and a string `code`. Use it
 * instead of `instanceof DiskError`, which is false for errors made by another copy.
 */
export function isDiskError(error: unknown): error is DiskError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { [DISK_ERROR_BRAND]?: unknown; code?: unknown };
  return candidate[DISK_ERROR_BRAND] === true && typeof candidate.code === 'string';
}

/** Formats a hex offset the way qemu-img prints them, for messages. */
export function hex(value: number): string {
  return '0x' + value.toString(16);
}
