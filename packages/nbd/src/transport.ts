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
   * transport is ready for more (backpressure); rejects when the connection is gone.
   */
  write(parts: readonly Uint8Array[]): Promise<void>;
  /** Ends the connection once what has been queued is sent. */
  close(): void;
  /** A label for log lines (`127.0.0.1:51234`, a socket path). */
  readonly peer?: string;
}
