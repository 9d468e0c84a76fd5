export { NbdServer, type NbdServerOptions } from './nbd-server.js';
export { exportIsReadOnly, transmissionFlags, type NbdExport } from './nbd-export.js';
export type { NbdTransport } from './transport.js';
export { memoryTransportPair, type MemoryClientEnd } from './memory-transport.js';
export { NbdProtocolError, NbdRequestError, NbdTlsError, nbdErrno, type NbdTlsErrorCode } from './nbd-error.js';
export type { NbdTlsPolicy } from './start-tls.js';
export { allocationExtents, type AllocationExtent } from './allocation-status.js';
export * from './protocol.js';
