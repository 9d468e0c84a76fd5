/** Node-only adapters: import from `@q/nbd/node` so browser builds of `@q/nbd` never see `node:net`. */
export { socketTransport } from './node-transport.js';
export { listenNbd, type ListenAddress, type NbdListener } from './node-listener.js';
export { isStaleSocket, removeStaleSocket } from './stale-socket.js';
