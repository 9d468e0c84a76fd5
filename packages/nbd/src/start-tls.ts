import type { NbdConnection } from './nbd-connection.js';
import { NbdProtocolError, NbdTlsError } from './nbd-error.js';
import { NBD_OPT_STARTTLS, NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_POLICY } from './protocol.js';
import { optionError, optionReply } from './replies.js';

/**
 * A server that insists on TLS (proto.md "TLS support", FORCEDTLS mode): until NBD_OPT_STARTTLS has upgraded the
 * connection, every option but STARTTLS and ABORT is answered NBD_REP_ERR_TLS_REQD and NBD_OPT_EXPORT_NAME ends
 * the connection, so nothing about the export is told to a client that has not authenticated.
 */
export interface NbdTlsPolicy {
  /**
   * The client identities served (certificate distinguished names in qemu's form, or PSK usernames), as qemu's
   * `authz-simple` lists them; undefined: any client that completes the TLS handshake. A client that proves an
   * identity not listed here is dropped right after the handshake.
   */
  allowedIdentities?: readonly string[];
}

/**
 * Answers NBD_OPT_STARTTLS and, when accepted, upgrades `connection` in place. `tlsRunning` says whether TLS is
 * already up; the result says whether it is up afterwards. Answers as qemu-nbd does: data with the option is
 * NBD_REP_ERR_INVALID, a server without TLS says NBD_REP_ERR_POLICY ("TLS not configured"), a second STARTTLS is
 * NBD_REP_ERR_INVALID (proto.md "FORCEDTLS mode"). A failed handshake or a denied identity throws NbdTlsError: the
 * ACK has been sent, so there is no going back to plaintext and the connection must end.
 */
export async function answerStartTls(
  connection: NbdConnection,
  dataLength: number,
  policy: NbdTlsPolicy | undefined,
  tlsRunning: boolean,
): Promise<boolean> {
  const refuse = async (type: number, message: string): Promise<boolean> => {
    await connection.transport.write([optionError(NBD_OPT_STARTTLS, type, message)]);
    return tlsRunning;
  };
  if (dataLength !== 0) return refuse(NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
  if (policy === undefined) return refuse(NBD_REP_ERR_POLICY, 'TLS not configured');
  if (tlsRunning) return refuse(NBD_REP_ERR_INVALID, 'TLS already enabled');
  const plain = connection.transport;
  // A server told to require TLS over a transport that cannot do it refuses for good: every other option keeps
  // getting TLS_REQD, so nothing is ever served in plaintext.
  if (plain.startTls === undefined) return refuse(NBD_REP_ERR_POLICY, 'TLS is not available on this connection');
  // The client must wait for our reply before it starts the TLS handshake (proto.md "Fixed newstyle negotiation":
  // no option until the previous one is answered); bytes already here were sent in plaintext after STARTTLS and
  // would be mistaken for TLS records, or worse, taken as options from the still unauthenticated client.
  if (connection.reader.bufferedLength !== 0) {
    throw new NbdProtocolError(`${connection.reader.bufferedLength} bytes sent after NBD_OPT_STARTTLS without waiting for the reply`);
  }
  await plain.write([optionReply(NBD_OPT_STARTTLS, NBD_REP_ACK)]);
  const secure = await plain.startTls(connection.signal);
  connection.transport = secure;
  connection.reader.replaceSource(secure.incoming);
  const allowed = policy.allowedIdentities;
  if (allowed !== undefined && (secure.tlsIdentity === undefined || !allowed.includes(secure.tlsIdentity))) {
    const who = secure.tlsIdentity === undefined ? 'a client without a certificate' : `'${secure.tlsIdentity}'`;
    throw new NbdTlsError('E_NBD_TLS_DENIED', `TLS identity ${who} is not authorised`);
  }
  return true;
}
