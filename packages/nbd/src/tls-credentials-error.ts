/** What is wrong with a TLS credentials file. */
export type TlsCredentialsErrorCode =
  /** The file (or the directory holding it) does not exist. */
  | 'E_TLS_MISSING'
  /** It exists but cannot be read (permissions, a directory where a file should be). */
  | 'E_TLS_UNREADABLE'
  /** It was read but is not what it should be: bad PEM, a key that does not match its certificate, a bad PSK line. */
  | 'E_TLS_MALFORMED';

/**
 * A server cannot start with these TLS credentials. Raised before anything listens, so a typo in a path is one
 * line on stderr rather than a server that refuses every client. `file` is the path at fault.
 */
export class TlsCredentialsError extends Error {
  override readonly name = 'TlsCredentialsError';
  readonly code: TlsCredentialsErrorCode;
  readonly file: string;

  constructor(code: TlsCredentialsErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.file = file;
  }
}
