import type { AddressInfo, Server, Socket } from 'node:net';
// node:fs's promises, looked up at each call: importing node:fs/promises loads its module at start (4-5 ms of every
// `qcow` command, which all reach this file through the default store), `promises` only when first used. A named
// import: a namespace import of node:fs makes the bundle copy every export of it into a new object at start.
import { promises as fsp } from 'node:fs';
import type { NbdServer } from './nbd-server.js';
import type { NbdTlsCredentials } from './node-tls-credentials.js';
import { BusyPoll } from './busy-poll.js';
import { socketTransport } from './node-transport.js';
import { removeStaleSocket } from './stale-socket.js';

/** Where to listen: TCP (`host`, `port`; port 0 picks a free one) or a Unix socket path. */
export type ListenAddress = { host?: string; port: number } | { path: string };

/** A listening NBD endpoint: its bound address, and how to stop it. */
export interface NbdListener {
  /** The TCP address actually bound (with the real port when 0 was asked), or the socket path. */
  readonly address: AddressInfo | string;
  /**
   * Stops accepting, shuts the NBD server down (running requests reply, connections close) and, for a Unix
   * socket, removes its file.
   */
  close(): Promise<void>;
}

export interface ListenOptions {
  /**
   * Require TLS (NBD_OPT_STARTTLS) of every client, with these credentials (loadX509Credentials,
   * loadPskCredentials). Give the NbdServer its `tls` policy too when only some identities may connect.
   */
  tls?: NbdTlsCredentials;
  /**
   * Keep the event loop polling up to this many microseconds after each reply before it sleeps (busy-poll.ts, as
   * QEMU's adaptive polling): faster requests at low queue depth on virtual machines, for some CPU. Default 0: off.
   */
  pollMicros?: number;
}

/**
 * Accepts connections on `address` and hands each to `server`. Each socket is independent: a client that hangs
 * up, sends garbage or fails TLS ends only its own connection, and the listener keeps accepting.
 *
 * A Unix socket file left by a server that was killed (nothing listens on it) is replaced, so a restart works as
 * with qemu-nbd. Unlike qemu-nbd, which unlinks whatever is at the path, a socket a live server still listens on
 * (and any file that is not a socket) is left alone: listening fails with EADDRINUSE instead of orphaning that
 * server.
 */
export async function listenNbd(server: NbdServer, address: ListenAddress, options: ListenOptions = {}): Promise<NbdListener> {
  // Imported here rather than with the module, which every process reaching @q/nbd/node loads (clients too).
  const { createServer } = await import('node:net');
  const sockets = new Set<Socket>();
  // One poller for every connection: they share the event loop it keeps awake.
  const poll = (options.pollMicros ?? 0) > 0 ? new BusyPoll(options.pollMicros!) : undefined;
  const listener: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void server.serve(socketTransport(socket, { ...(options.tls === undefined ? {} : { tls: options.tls }), ...(poll === undefined ? {} : { poll }) }));
  });
  try {
    await listenOnce(listener, address);
  } catch (error) {
    const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
    if (!('path' in address) || !inUse || !(await removeStaleSocket(address.path))) throw error;
    await listenOnce(listener, address);
  }
  // After listening, an error (EMFILE on accept) must not crash the process; the listener stays up.
  listener.on('error', () => {});
  const bound = listener.address();
  const path = 'path' in address ? address.path : undefined;
  // Node removes the socket file when the listener closes; removing it again afterwards is only for a file that
  // is still ours (same inode): a server started on the same path since then must keep its socket.
  const inode = path === undefined ? undefined : (await fsp.lstat(path).catch(() => undefined))?.ino;
  return {
    address: bound ?? path ?? '',
    close: async () => {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      await server.shutdown();
      for (const socket of sockets) socket.destroy();
      await closed;
      if (path !== undefined && inode !== undefined && (await fsp.lstat(path).catch(() => undefined))?.ino === inode) {
        await fsp.unlink(path).catch(() => {});
      }
    },
  };
}

function listenOnce(listener: Server, address: ListenAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => reject(error);
    listener.once('error', failed);
    const ready = (): void => {
      listener.off('error', failed);
      resolve();
    };
    if ('path' in address) listener.listen(address.path, ready);
    else listener.listen(address.port, address.host ?? '127.0.0.1', ready);
  });
}
