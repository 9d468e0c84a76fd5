import type { ByteReader } from './byte-reader.js';
import type { NbdTransport } from './transport.js';

/**
 * One client's connection as the server runs it: what it reads from and writes to. Both change once, when
 * NBD_OPT_STARTTLS upgrades the connection, so every phase reaches them through this object rather than holding
 * the plaintext transport it started with.
 */
export interface NbdConnection {
  reader: ByteReader;
  transport: NbdTransport;
  /** Aborted when the server shuts down: ends a TLS handshake that would otherwise hold the shutdown up. */
  readonly signal: AbortSignal;
}
