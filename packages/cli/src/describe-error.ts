import { isDiskError, type DiskError } from '@q/raw';
import { UsageError, ExitError } from './usage-error.js';

/** qemu-img's "Could not open 'FILE': REASON" for a failed open, naming FILE once (twice when the system refused it). */
export function openFailure(error: unknown, file: string): string {
  if (isDiskError(error) && error.reason === 'backing-open' && error.file === file) return `Could not open '${file}': ${backingOpenReason(error)}`;
  if (isDiskError(error) && (error.file === undefined || error.file === file)) return refusedFile(error, file) ?? `Could not open '${file}': ${error.message}`;
  const reason = describeError(error, file);
  return reason.startsWith('Could not open ') ? reason : `Could not open '${file}': ${reason}`;
}

/**
 * qemu-img's words for a backing file that did not open: "Could not open backing file: " and the backing file's own
 * failure as it would be worded after "Could not open 'TOP': " (the system's refusal naming the file; a format's
 * refusal as it is; deeper in the chain, the same again).
 */
function backingOpenReason(error: DiskError): string {
  const cause = error.cause;
  if (isDiskError(cause) && cause.reason === 'backing-open') return `Could not open backing file: ${backingOpenReason(cause)}`;
  if (isDiskError(cause) && cause.file !== undefined && isSystemFailure(cause)) return `Could not open backing file: ${fileOpenReason(cause, cause.file)}`;
  return `Could not open backing file: ${isDiskError(cause) ? cause.message : error.message}`;
}

/** One line for any failure: the file when known, then what is wrong. Never a stack trace. */
export function describeError(error: unknown, fallbackFile?: string): string {
  if (isDiskError(error)) {
    const file = error.file ?? fallbackFile;
    // qemu-img's words for a lock conflict, which scripts look for: "Could not open 'X': Failed to get ... lock".
    if (error.code === 'E_LOCKED' && file !== undefined) return `Could not open '${file}': ${error.message}`;
    const refused = refusedFile(error, file);
    if (refused !== undefined) return refused;
    return file === undefined ? error.message : `'${file}': ${error.message}`;
  }
  if (error instanceof UsageError || error instanceof ExitError) return error.message;
  if (error instanceof Error) return `internal error: ${error.message}`;
  return `internal error: ${String(error)}`;
}

/**
 * qemu-img's words for an image file the system would not open (missing, not permitted): the image layer's
 * "Could not open 'X': " and the file layer's, then strerror's text. Undefined for any other failure.
 */
function refusedFile(error: unknown, file: string | undefined): string | undefined {
  if (!isDiskError(error) || error.code !== 'E_NOT_FOUND' || file === undefined || !isSystemFailure(error)) return undefined;
  return `Could not open '${file}': ${fileOpenReason(error, file)}`;
}

/**
 * What qemu-img says of a file it could not open, after naming the layer that wanted it: "Could not open 'FILE':
 * <strerror>" when the system refused the file, the refusal as it is otherwise (a format's, a lock's).
 */
export function fileOpenReason(error: unknown, file: string): string {
  return isSystemFailure(error) ? `Could not open '${file}': ${openErrorReason(error, file)}` : openErrorReason(error, file);
}

/** strerror's text for the errors a command meets binding sockets and creating files (Node gives only the code). */
const SYSTEM_ERRORS: Record<string, string> = {
  EACCES: 'Permission denied',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EEXIST: 'File exists',
  EISDIR: 'Is a directory',
  ENAMETOOLONG: 'File name too long',
  ENOENT: 'No such file or directory',
  ENOSPC: 'No space left on device',
  ENOTDIR: 'Not a directory',
  EPERM: 'Operation not permitted',
  EROFS: 'Read-only file system',
};

/** A system error as C's strerror words it (qemu's messages end so); other errors by their message. */
export function systemErrorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const text = code === undefined ? undefined : SYSTEM_ERRORS[code];
  if (text !== undefined) return text;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether the system refused the file itself (the failure is, or directly wraps, a system error with an errno), not
 * its contents, a lock, or a layer below it (a DiskError wrapping another, as a missing backing file's does).
 */
export function isSystemFailure(error: unknown): boolean {
  const cause = isDiskError(error) ? error.cause : error;
  return !isDiskError(cause) && typeof (cause as NodeJS.ErrnoException | undefined)?.errno === 'number';
}

/**
 * Why a file could not be opened or created, in the system's words alone ("No such file or directory"), as qemu
 * words it after "Could not open 'X': "; other failures as describeError words them.
 */
export function openErrorReason(error: unknown, file: string): string {
  if (isSystemFailure(error)) return systemErrorText(isDiskError(error) ? error.cause : error);
  return isDiskError(error) ? error.message : describeError(error, file);
}
