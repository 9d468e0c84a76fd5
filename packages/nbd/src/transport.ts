/**
 * The one port the server needs from a connection: bytes in, bytes out, hang up. A TCP or Unix socket
 * (`@q/nbd/node`), an in-memory pair for tests, or a WebSocket in a browser can all provide it.
 */
export interface NbdTransport {
  /** What the client sends, in order, cut anywhere; the iteration ends when the client closes. */
  readonly incoming: AsyncIterable<Uint8Array>;
  /**
   * Queues `parts` to be sent back to back: nothing else is sent between them, which is what keeps a reply
   * header and its payload together while other requests' replies are being produced. Resolves when the
   * transport is ready for more (backpressure); rejects when the connection is gone. `sent`, when given, is
   * called once the transport no longer needs the parts' bytes (handed to the kernel, copied, or dropped with the
   * connection), so their buffers may be reused; a transport may also never call it (then nothing is reused).
   */
  write(parts: readonly Uint8Array[], sent?: () => void): Promise<void>;
  /** Ends the connection once what has been queued is sent. */
  close(): void;
  /**
   * Told when a request has arrived and starts running; its reply comes through `write`. Optional: a transport
   * that polls for the next request between replies (busy-poll.ts) stops polling while requests run.
   */
  requestStarted?(): void;
  /** A label for log lines (`127.0.0.1:51234`, a socket path). */
  readonly peer?: string;
  /**
   * Present when this connection can switch to TLS (NBD_OPT_STARTTLS). Called right after the server has sent its
   * ACK: runs the TLS handshake over this connection and resolves to the transport that carries everything after
   * it (this one must not be used again); rejects with an NbdTlsError when the handshake fails, the connection then
   * being beyond use. `signal` aborts a handshake in progress (server shutdown). An optional capability, so the
   * core stays free of any TLS library: a browser transport simply lacks it.
   */
  startTls?(signal: AbortSignal): Promise<NbdTransport>;
  /**
   * Who the client proved to be in the TLS handshake: its certificate's distinguished name (qemu's form, RDNs in
   * certificate order: `C=GB,O=Example,CN=client1`) or its PSK username. Undefined before TLS, or when the client
   * showed no certificate.
   */
  readonly tlsIdentity?: string;
}
