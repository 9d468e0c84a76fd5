import { isDiskError } from '@q/raw';
import { NBD_EINVAL, NBD_EIO, NBD_EPERM } from './protocol.js';

/**
 * The peer broke a MUST of the protocol in a way that leaves the byte stream unusable (bad magic, a cut-off
 * message, an oversized option): the only answer is to drop the connection (proto.md "Termination of the
 * session during option haggling", "Terminating the transmission phase").
 */
export class NbdProtocolError extends Error {
  override readonly name = 'NbdProtocolError';
  readonly code = 'E_NBD_PROTOCOL';
}

/** Why a connection ended in or around its TLS upgrade. */
export type NbdTlsErrorCode =
  /** The client tried to get past haggling (NBD_OPT_EXPORT_NAME) before TLS on a server that requires it. */
  | 'E_NBD_TLS_REQUIRED'
  /** The TLS handshake failed: wrong key, untrusted or missing certificate, a client that hung up or stalled. */
  | 'E_NBD_TLS_HANDSHAKE'
  /** The handshake succeeded but the client's identity is not among those allowed (`--tls-authz`). */
  | 'E_NBD_TLS_DENIED';

/**
 * A connection the server drops for TLS reasons. Like a protocol error it ends one connection only; it is its own
 * class so that logs (and tests) can tell a refused client from a broken one.
 */
export class NbdTlsError extends Error {
  override readonly name = 'NbdTlsError';
  readonly code: NbdTlsErrorCode;

  constructor(code: NbdTlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A request the server refuses with a given NBD error value; the connection carries on. */
export class NbdRequestError extends Error {
  override readonly name = 'NbdRequestError';
  readonly errno: number;

  constructor(errno: number, message: string) {
    super(message);
    this.errno = errno;
  }
}

/**
 * The NBD error value for a failure of the device: the protocol only has a handful (proto.md "Error values"), so
 * a read-only device (or a write it does not permit) gives EPERM, a bad range EINVAL, and everything else (I/O, corruption) EIO.
 */
export function nbdErrno(error: unknown): number {
  if (error instanceof NbdRequestError) return error.errno;
  if (isDiskError(error)) {
    switch (error.code) {
      case 'E_READ_ONLY':
      case 'E_NOT_PERMITTED':
        return NBD_EPERM;
      case 'E_INVALID':
        return NBD_EINVAL;
      default:
        return NBD_EIO;
    }
  }
  return NBD_EIO;
}
