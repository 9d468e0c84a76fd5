import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.js';
import { NbdProtocolError } from './nbd-error.js';
import type { NbdTlsCredentials } from './node-tls-credentials.js';
import { socketChunks } from './socket-chunks.js';
import type { NbdTransport } from './transport.js';

export interface SocketTransportOptions {
  /** Offer NBD_OPT_STARTTLS with these credentials (the server then requires TLS of this connection). */
  tls?: NbdTlsCredentials;
  /** Told of every reply written, to keep the event loop polling for the next request (a server's). */
  poll?: BusyPoll;
}

/**
 * A node:net socket (TCP or Unix) as an NbdTransport, able to upgrade to TLS when given credentials. The only
 * file of the package that sees Buffer: a Buffer is a Uint8Array, so chunks pass through uncopied.
 */
export function socketTransport(socket: Socket, options: SocketTransportOptions = {}): NbdTransport {
  // Requests and replies are small and latency-bound; Nagle would hold a reply back waiting for the next one.
  // Set on the TCP socket, it holds for the TLS stream over it too.
  if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  const peer = socket.remoteAddress === undefined ? 'unix socket client' : `${socket.remoteAddress}:${socket.remotePort ?? '?'}`;
  return transportOver(socket, peer, options.tls, options.poll);
}

/** The transport over `socket` (plain, or the TLS stream after an upgrade, then with the client's identity). */
function transportOver(socket: Socket, peer: string, tls: NbdTlsCredentials | undefined, poll: BusyPoll | undefined, tlsIdentity?: string): NbdTransport {
  // A reset by the peer must not become an uncaught 'error' event; the read loop sees the stream end instead.
  socket.on('error', () => {});
  const incoming = socketChunks(socket);
  // One wait for room per socket, shared by every reply that finds the socket full: each reply adding its own
  // 'drain' and 'close' listeners would pass node's limit of 10 (and warn on stderr) with 16 requests in flight.
  // 'drain' means everything queued so far has been handed to the kernel, so it frees all of them at once.
  let room: Promise<void> | undefined;
  const whenRoom = (): Promise<void> =>
    (room ??= new Promise<void>((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        room = undefined;
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    }));
  // Replies finished in one turn of the event loop (with many requests in flight, several complete together)
  // leave in one writev: the socket stays corked until the turn's microtasks have run. On loopback a send costs
  // about as much as serving a 4 KiB request from the page cache, so one per reply halved write IOPS.
  // Requests of this connection told to the poller and not answered: a connection that ends (a client gone in the
  // middle of a request, a protocol error) gives them back, or they would hold polling off for good.
  let running = 0;
  if (poll !== undefined) {
    socket.once('close', () => {
      poll.abandoned(running);
      running = 0;
    });
  }
  let corked = false;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    socket.uncork();
  };
  const transport: NbdTransport = {
    incoming,
    peer,
    ...(tlsIdentity === undefined ? {} : { tlsIdentity }),
    write: async (parts, sent) => {
      if (socket.destroyed || socket.writableEnded) throw new Error('the connection is closed');
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      // Consecutive writes with no await in between: nothing from another reply can come between the parts.
      // The last part's callback runs once every part is in the kernel (or the socket has failed): writes complete
      // in order, and node calls back even for writes a destroyed socket drops.
      let ready = true;
      const last = parts.length - 1;
      for (let i = 0; i <= last; i++) ready = i === last && sent !== undefined ? socket.write(parts[i]!, () => sent()) : socket.write(parts[i]!);
      // A request's reply (not a negotiation message, nor another connection's): poll for the next request.
      if (running > 0) {
        running--;
        poll?.activity();
      }
      if (!ready) await whenRoom();
    },
    ...(poll === undefined
      ? {}
      : {
          requestStarted: () => {
            running++;
            poll.started();
          },
        }),
    close: () => {
      if (socket.destroyed) return;
      // end() sends what is queued (and TLS's close_notify), then FIN; destroy afterwards so a client that never
      // closes its side does not keep the socket (and the process) alive.
      socket.end(() => socket.destroy());
    },
  };
  if (tls === undefined) return transport;
  return {
    ...transport,
    startTls: async (signal) => {
      // Taken off the socket before anything else can run: what arrives from here on is the client's TLS
      // handshake, which stays in the socket for TLS to read. Bytes already received were sent before our ACK.
      const unread = incoming.detach();
      if (unread > 0) {
        socket.destroy();
        throw new NbdProtocolError(`${unread} bytes sent after NBD_OPT_STARTTLS without waiting for the reply`);
      }
      // The ACK must leave in plaintext, before TLS takes the socket over.
      uncork();
      await new Promise<void>((resolve, reject) => socket.write(new Uint8Array(0), (error) => (error ? reject(error) : resolve())));
      // Imported here, with node:tls, only by a server that gets STARTTLS (the socket holds what arrives meanwhile).
      const { upgradeSocket } = await import('./node-tls-upgrade.js');
      const upgraded = await upgradeSocket(socket, tls, signal);
      return transportOver(upgraded.socket, peer, undefined, poll, upgraded.identity);
    },
  };
}
