import type { Socket } from 'node:net';
import { socketChunks } from './socket-chunks.js';
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
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  return {
    incoming: socketChunks(socket),
    peer,
    write: async (parts) => {
      if (socket.destroyed || socket.writableEnded) throw new Error('the connection is closed');
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      // Consecutive writes with no await in between: nothing from another reply can come between the parts.
      let ready = true;
      for (const part of parts) ready = socket.write(part);
      if (!ready) await whenRoom();
    },
    close: () => {
      if (socket.destroyed) return;
      // end() sends what is queued, then FIN; destroy afterwards so a client that never closes its side does not
      // keep the socket (and the process) alive.
      socket.end(() => socket.destroy());
    },
  };
}
