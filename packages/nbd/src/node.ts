/** Node-only adapters: import from `@q/nbd/node` so browser builds of `@q/nbd` never see `node:net`. */
export { socketTransport, type SocketTransportOptions } from './node-transport.js';
export { listenNbd, type ListenAddress, type ListenOptions, type NbdListener } from './node-listener.js';
export { loadPskCredentials, loadX509Credentials, type NbdTlsCredentials } from './node-tls-credentials.js';
export { TlsCredentialsError, type TlsCredentialsErrorCode } from './tls-credentials-error.js';
export { parsePskFile } from './psk-file.js';
export { CertificateFormatError } from './der.js';
export { subjectDistinguishedName } from './distinguished-name.js';
export { isStaleSocket, removeStaleSocket } from './stale-socket.js';
export { nbdStore, type NbdStoreOptions } from './nbd-store.js';
export { openNbdFile, probeNbdExport, connectNbdSocket } from './node-nbd-client.js';
export { parseNbdUri, formatNbdUri, type NbdAddress, type NbdTarget } from './nbd-uri.js';
export { NbdBlockFile, type NbdFileOptions } from './nbd-block-file.js';
