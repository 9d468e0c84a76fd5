import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import type { NbdServer } from './nbd-server.js';
import type { NbdTlsCredentials } from './node-tls-credentials.js';
import { socketTransport } from './node-transport.js';

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
}

/**
 * Accepts connections on `address` and hands each to `server`. Each socket is independent: a client that hangs
 * up, sends garbage or fails TLS ends only its own connection, and the listener keeps accepting.
 */
export async function listenNbd(server: NbdServer, address: ListenAddress, options: ListenOptions = {}): Promise<NbdListener> {
  const sockets = new Set<Socket>();
  const listener: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void server.serve(socketTransport(socket, options.tls === undefined ? {} : { tls: options.tls }));
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    const ready = (): void => {
      listener.off('error', reject);
      resolve();
    };
    if ('path' in address) listener.listen(address.path, ready);
    else listener.listen(address.port, address.host ?? '127.0.0.1', ready);
  });
  // After listening, an error (EMFILE on accept) must not crash the process; the listener stays up.
  listener.on('error', () => {});
  const bound = listener.address();
  const path = 'path' in address ? address.path : undefined;
  return {
    address: bound ?? path ?? '',
    close: async () => {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      await server.shutdown();
      for (const socket of sockets) socket.destroy();
      await closed;
      if (path !== undefined) await unlink(path).catch(() => {});
    },
  };
}
