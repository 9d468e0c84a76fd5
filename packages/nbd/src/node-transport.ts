import type { Socket } from 'node:net';
import type { NbdTransport } from './transport.js';

/**
 * A node:net socket (TCP or Unix) as an NbdTransport. The only file of the package that sees Buffer: a Buffer is
 * a Uint8Array, so chunks pass through uncopied.
 */
export function socketTransport(socket: Socket): NbdTransport {
  // Requests and replies are small and latency-bound; Nagle would hold a reply back waiting for the next one.
  if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  // A reset by the peer must not become an uncaught 'error' event; the read loop sees the stream end instead.
  socket.on('error', () => {});
  const peer = socket.remoteAddress === undefined ? 'unix socket client' : `${socket.remoteAddress}:${socket.remotePort ?? '?'}`;
  return {
    incoming: socket,
    peer,
    write: (parts) =>
      new Promise<void>((resolve, reject) => {
        if (socket.destroyed || socket.writableEnded) {
          reject(new Error('the connection is closed'));
          return;
        }
        let ready = true;
        // Consecutive writes with no await in between: nothing from another reply can come between the parts.
        // Corked, they leave in one writev (header and data together) instead of one send per part.
        socket.cork();
        for (const part of parts) ready = socket.write(part);
        socket.uncork();
        if (ready) {
          resolve();
          return;
        }
        // Wait for room (or the end); whichever comes first removes the other listener, so replies waiting on a
        // busy socket never pile listeners up.
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      }),
    close: () => {
      if (socket.destroyed) return;
      // end() sends what is queued, then FIN; destroy afterwards so a client that never closes its side does not
      // keep the socket (and the process) alive.
      socket.end(() => socket.destroy());
    },
  };
}
