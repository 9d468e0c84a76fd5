import { connect } from 'node:net';

/** Whether something accepts connections at a Unix socket path or a loopback TCP port right now. */
export function canConnect(address: { port: number } | { path: string } | string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = typeof address === 'string' ? connect(address) : 'path' in address ? connect(address.path) : connect(address.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
