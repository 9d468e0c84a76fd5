import type { Socket } from 'node:net';
import { DiskError, type DiskErrorCode } from '@q/raw';
import type { NbdExportInfo } from './export-info.js';
import { NbdBlockFile, type NbdFileOptions } from './nbd-block-file.js';
import { NbdClient } from './nbd-client.js';
import { describeAddress, parseNbdUri, type NbdAddress } from './nbd-uri.js';
import { socketTransport } from './node-transport.js';
import type { NbdTransport } from './transport.js';

const CONNECT_TIMEOUT_MS = 30_000;

/**
 * Opens the export that `uri` names (`nbd://HOST[:PORT]/EXPORT`, `nbd+unix:///EXPORT?socket=PATH`, QEMU's legacy
 * `nbd:` forms) as a BlockFile, over TCP or a Unix socket. Errors are DiskErrors naming `uri`: a refused connection
 * in qemu-img's words ("Failed to connect to '127.0.0.1:10809': Connection refused"), an unknown export E_NOT_FOUND,
 * a read-only export opened writable E_READ_ONLY, a bad URI E_INVALID.
 */
export async function openNbdFile(uri: string, options: Omit<NbdFileOptions, 'exportName'> = {}): Promise<NbdBlockFile> {
  const target = parseNbdUri(uri);
  const name = options.name ?? uri;
  return NbdBlockFile.connect(() => connectNbdSocket(target.address, { file: name, timeoutMs: options.handshakeTimeoutMs }), {
    ...options,
    exportName: target.exportName,
    name,
  });
}

/** What the server says about the export `uri` names (NBD_OPT_INFO, then NBD_OPT_ABORT), without using it. */
export async function probeNbdExport(uri: string, options: Omit<NbdFileOptions, 'exportName' | 'writable'> = {}): Promise<NbdExportInfo> {
  const target = parseNbdUri(uri);
  const name = options.name ?? uri;
  const transport = await connectNbdSocket(target.address, { file: name, timeoutMs: options.handshakeTimeoutMs });
  return NbdClient.probe(transport, { ...options, exportName: target.exportName, name });
}

/**
 * A connected socket to an NBD server as a transport. A connection that neither succeeds nor fails within
 * `timeoutMs` (a filtered port drops SYNs silently) is given up as E_IO.
 */
export async function connectNbdSocket(address: NbdAddress, options: { file: string; timeoutMs?: number | undefined }): Promise<NbdTransport> {
  const where = describeAddress(address);
  const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
  // node:net is imported when a connection is made: a process that only might open an nbd: name (every `qcow`
  // command, through the default store) does not load it at start.
  const { connect } = await import('node:net');
  return new Promise<NbdTransport>((resolve, reject) => {
    const socket: Socket = address.kind === 'unix' ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            socket.destroy();
            reject(new DiskError('E_IO', `Failed to connect to '${where}': Connection timed out`, { file: options.file }));
          }, timeoutMs)
        : undefined;
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectError(error, address, options.file));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socketTransport(socket));
    });
  });
}

/** Node's errno codes as qemu-img words them; decided by `code`, never by node's message. */
const SOCKET_ERRORS: Readonly<Record<string, [DiskErrorCode, string]>> = {
  ECONNREFUSED: ['E_IO', 'Connection refused'],
  ENOENT: ['E_NOT_FOUND', 'No such file or directory'],
  EACCES: ['E_IO', 'Permission denied'],
  ENOTSOCK: ['E_IO', 'Socket operation on non-socket'],
  ECONNRESET: ['E_IO', 'Connection reset by peer'],
  ETIMEDOUT: ['E_IO', 'Connection timed out'],
  EHOSTUNREACH: ['E_IO', 'No route to host'],
  ENETUNREACH: ['E_IO', 'Network is unreachable'],
  EADDRNOTAVAIL: ['E_IO', 'Cannot assign requested address'],
};

function connectError(error: NodeJS.ErrnoException, address: NbdAddress, file: string): DiskError {
  const where = describeAddress(address);
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' || error.code === 'EAI_FAIL') {
    return new DiskError('E_NOT_FOUND', `address resolution failed for ${where}: Name or service not known`, { file, cause: error });
  }
  const [code, text] = SOCKET_ERRORS[error.code ?? ''] ?? ['E_IO', error.message];
  return new DiskError(code, `Failed to connect to '${where}': ${text}`, { file, cause: error });
}
