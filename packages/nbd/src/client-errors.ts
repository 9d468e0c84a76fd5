import { DiskError, isDiskError, type DiskErrorCode } from '@q/raw';
import { NbdProtocolError } from './nbd-error.js';
import { NBD_EINVAL, NBD_EIO, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP, NBD_EOVERFLOW, NBD_EPERM, NBD_ESHUTDOWN } from './protocol.js';

/**
 * What the client side turns server answers into. Everything leaves as a DiskError with a typed code, so callers
 * (the store, the CLI) decide by `code`; the message is one line for people, naming the server's words where it
 * sent some.
 */

/** proto.md "Error values": the protocol's own numbers, with the strerror text qemu-img would print. */
const ERRNO_TEXT: ReadonlyMap<number, string> = new Map([
  [NBD_EPERM, 'Operation not permitted'],
  [NBD_EIO, 'Input/output error'],
  [NBD_ENOMEM, 'Cannot allocate memory'],
  [NBD_EINVAL, 'Invalid argument'],
  [NBD_ENOSPC, 'No space left on device'],
  [NBD_EOVERFLOW, 'Value too large for defined data type'],
  [NBD_ENOTSUP, 'Operation not supported'],
  [NBD_ESHUTDOWN, 'Server is shutting down'],
]);

/**
 * A request the server answered with an error value. EPERM is what servers answer writes to a read-only export
 * with; EINVAL a request outside the export or against its block size constraints; ENOTSUP a command it cannot
 * do. proto.md says a server may send any other errno as EINVAL or EIO, so the rest is E_IO.
 */
export function requestError(errno: number, what: string, offset: number, file: string): DiskError {
  const code: DiskErrorCode =
    errno === NBD_EPERM ? 'E_READ_ONLY' : errno === NBD_EINVAL ? 'E_INVALID' : errno === NBD_ENOTSUP ? 'E_UNSUPPORTED' : 'E_IO';
  const text = ERRNO_TEXT.get(errno) ?? `error ${errno}`;
  return new DiskError(code, `${what} at offset ${offset} failed: ${text}`, { file, offset });
}

/** The server broke the protocol (bad magic, a reply for a handle never sent, a cut message): E_IO, one line. */
export function protocolFailure(message: string, file: string, cause?: unknown): DiskError {
  return new DiskError('E_IO', `NBD protocol error: ${message}`, { file, cause });
}

/**
 * Any failure while talking to the server as a DiskError: a DiskError stays as it is (attributed to `file`); the
 * ByteReader's NbdProtocolError (a message cut short by a close) and transport errors become E_IO.
 */
export function asDiskError(error: unknown, file: string): DiskError {
  if (isDiskError(error)) return error.withFile(file);
  if (error instanceof NbdProtocolError) return protocolFailure(error.message, file, error);
  const message = error instanceof Error ? error.message : String(error);
  return new DiskError('E_IO', `connection to the NBD server failed: ${oneLine(message)}`, { file, cause: error });
}

/** A server's message, made safe for a one-line error: no control characters, not longer than a line should be. */
export function oneLine(text: string, limit = 300): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > limit ? `${flat.slice(0, limit)}...` : flat;
}
