import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { CertificateFormatError } from './der.js';
import { subjectDistinguishedName } from './distinguished-name.js';
import { NbdTlsError } from './nbd-error.js';
import type { NbdTlsCredentials } from './node-tls-credentials.js';

/**
 * A client that starts the TLS handshake and then stalls would hold its connection (and a server shutdown) for
 * ever; node's own TLS servers give up after 120 s, which is long for a handshake that takes milliseconds.
 */
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** A socket after a successful TLS handshake, and who the client proved to be. */
export interface UpgradedSocket {
  socket: TLSSocket;
  identity: string | undefined;
}

/**
 * Runs the server side of a TLS handshake over `raw`, a socket that has just sent NBD_OPT_STARTTLS's ACK (the
 * caller has stopped reading it). Rejects with NbdTlsError E_NBD_TLS_HANDSHAKE, the socket destroyed, when the
 * handshake fails: wrong PSK, no or untrusted client certificate, a client that leaves or stalls, or `signal`.
 *
 * The handshake runs inside a tls.Server made for this one socket (handed the socket as a 'connection'): that is
 * the public way to get node's server-side checks, client certificate verification with `rejectUnauthorized`
 * among them, which a bare `new TLSSocket(socket, { isServer: true })` skips. Making it costs a parse of the key
 * (about 1.5 ms for RSA-3072), once per connection.
 */
export function upgradeSocket(raw: Socket, credentials: NbdTlsCredentials, signal: AbortSignal): Promise<UpgradedSocket> {
  let pskIdentity: string | undefined;
  let unknownUser: string | undefined;
  const options: TlsOptions = { ...credentials.serverOptions, handshakeTimeout: HANDSHAKE_TIMEOUT_MS };
  const keys = credentials.pskKeys;
  if (keys !== undefined) {
    options.pskCallback = (_socket, identity) => {
      const key = keys.get(identity);
      // An unknown username fails the handshake; a known one with the wrong key fails it too (the binder or the
      // Finished message does not check out), so only a client holding the key gets past this.
      if (key === undefined) {
        unknownUser = identity;
        return null;
      }
      pskIdentity = identity;
      return key;
    };
  }
  const server = new TlsServer(options);
  return new Promise<UpgradedSocket>((resolve, reject) => {
    let settled = false;
    const fail = (why: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      raw.destroy();
      reject(new NbdTlsError('E_NBD_TLS_HANDSHAKE', `TLS handshake failed: ${why}`, { cause }));
    };
    const onAbort = (): void => fail('the server is shutting down');
    server.once('secureConnection', (secure: TLSSocket) => {
      if (settled) return void secure.destroy();
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve({ socket: secure, identity: credentials.kind === 'psk' ? pskIdentity : certificateIdentity(secure) });
    });
    server.once('tlsClientError', (error: Error, secure: TLSSocket) => {
      // A rejected certificate ends as a hang-up without an error of its own; its reason is authorizationError.
      const refused: unknown = secure.authorizationError;
      // OpenSSL's errors carry a short `reason` ("binder does not verify": a wrong PSK) beside a long message.
      const reason = (error as { reason?: unknown }).reason;
      const why =
        refused !== undefined && refused !== null
          ? `client certificate refused: ${String(refused)}`
          : unknownUser !== undefined
            ? `unknown PSK username '${unknownUser}'`
            : typeof reason === 'string'
              ? reason
              : error.message;
      fail(why, error);
      secure.destroy();
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    server.emit('connection', raw);
  });
}

/** The verified client certificate's distinguished name in qemu's form; undefined without one. */
function certificateIdentity(secure: TLSSocket): string | undefined {
  const certificate = secure.getPeerX509Certificate();
  if (certificate === undefined) return undefined;
  try {
    return subjectDistinguishedName(new Uint8Array(certificate.raw));
  } catch (error) {
    // OpenSSL accepted it, so this cannot happen short of a parser bug; no identity means --tls-authz refuses it.
    if (error instanceof CertificateFormatError) return undefined;
    throw error;
  }
}
