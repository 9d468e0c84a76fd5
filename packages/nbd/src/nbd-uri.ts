import { DiskError } from '@q/raw';
import { MAX_STRING_LENGTH } from './protocol.js';
import { encodeText } from './wire.js';

/** The IANA port of NBD (proto.md "Newstyle negotiation"), used when a name gives none. */
export const NBD_DEFAULT_PORT = 10809;

/** Where an NBD server listens: a TCP host and port, or a Unix socket. */
export type NbdAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** An export on a server: what a name like `nbd://host:10809/disk` stands for. */
export interface NbdTarget {
  address: NbdAddress;
  /** The export name sent in NBD_OPT_GO; "" is the server's default export. */
  exportName: string;
}

/**
 * Parses the names qemu-img and libnbd accept for NBD exports:
 * - `nbd://HOST[:PORT]/[EXPORT]` (also `nbd+tcp://`): default port 10809, percent-encoded export name, an IPv6
 *   host in brackets; the path after the first `/` is the export name, so `nbd://h//x` names `/x`;
 * - `nbd+unix:///[EXPORT]?socket=PATH`: no host, exactly one `socket` parameter;
 * - QEMU's legacy `nbd:HOST:PORT[:exportname=NAME]` and `nbd:unix:PATH[:exportname=NAME]`.
 * `nbds://` and `nbd+unix` over TLS are refused as unsupported (this client has no TLS). Anything else is a one-line
 * E_INVALID naming the URI. Where QEMU quietly ignores a part (a user name, a fragment, port 0) we refuse it: a name
 * that does not mean what it says is a mistake worth reporting.
 */
export function parseNbdUri(name: string): NbdTarget {
  const invalid = (why: string): DiskError => new DiskError('E_INVALID', `invalid NBD URI: ${why}`, { file: name });
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(name)?.[1]?.toLowerCase();
  if (scheme === 'nbds' || scheme === 'nbds+unix' || scheme === 'nbds+tcp') {
    throw new DiskError('E_UNSUPPORTED', `TLS (${scheme}://) is not supported by this NBD client`, { file: name });
  }
  if (scheme !== 'nbd' && scheme !== 'nbd+tcp' && scheme !== 'nbd+unix') throw invalid('not an nbd: name');
  const rest = name.slice(scheme.length + 1);
  if (!rest.startsWith('//')) {
    if (scheme !== 'nbd') throw invalid(`${scheme}: needs //`);
    return parseLegacy(rest, invalid);
  }
  const match = /^\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?(#.*)?$/.exec(rest);
  if (match === null) throw invalid('malformed');
  const [, authority = '', path = '', query, fragment] = match;
  if (fragment !== undefined) throw invalid('a fragment (#...) means nothing here');
  const exportName = checkExportName(decode(path.slice(1), invalid), invalid);
  const params = parseQuery(query, invalid);
  if (scheme === 'nbd+unix') {
    if (authority !== '') throw invalid('nbd+unix:// takes no host (nbd+unix:///EXPORT?socket=PATH)');
    const socket = params.get('socket');
    if (socket === undefined || params.size !== 1) throw invalid('nbd+unix:// needs exactly one socket=PATH parameter');
    if (socket === '') throw invalid('empty socket path');
    return { address: { kind: 'unix', path: socket }, exportName };
  }
  if (params.size !== 0) throw invalid(`unexpected parameters '${query ?? ''}'`);
  return { address: parseAuthority(authority, invalid), exportName };
}

/** `nbd:HOST:PORT[:exportname=NAME]` or `nbd:unix:PATH[:exportname=NAME]` (`rest` follows `nbd:`). */
function parseLegacy(rest: string, invalid: (why: string) => DiskError): NbdTarget {
  const marker = rest.indexOf(':exportname=');
  const exportName = marker < 0 ? '' : checkExportName(rest.slice(marker + ':exportname='.length), invalid);
  const where = marker < 0 ? rest : rest.slice(0, marker);
  if (where.startsWith('unix:')) {
    const path = where.slice('unix:'.length);
    if (path === '') throw invalid('empty socket path');
    return { address: { kind: 'unix', path }, exportName };
  }
  const colon = where.lastIndexOf(':');
  if (colon <= 0) throw invalid(`error parsing address '${where}' (nbd:HOST:PORT)`);
  const host = unbracket(where.slice(0, colon), invalid);
  return { address: { kind: 'tcp', host, port: parsePort(where.slice(colon + 1), invalid) }, exportName };
}

function parseAuthority(authority: string, invalid: (why: string) => DiskError): NbdAddress {
  if (authority.includes('@')) throw invalid('user names are not supported');
  const bracketed = /^(\[[^\]]*\])(?::(.*))?$/.exec(authority);
  const [hostPart, portPart] =
    bracketed !== null ? [bracketed[1]!, bracketed[2]] : authority.includes(':') ? splitOnce(authority) : [authority, undefined];
  if (hostPart === '') throw invalid('no host (nbd://HOST[:PORT]/EXPORT)');
  const host = unbracket(decode(hostPart, invalid), invalid);
  return { kind: 'tcp', host, port: portPart === undefined ? NBD_DEFAULT_PORT : parsePort(portPart, invalid) };
}

function splitOnce(authority: string): [string, string] {
  const colon = authority.indexOf(':');
  return [authority.slice(0, colon), authority.slice(colon + 1)];
}

/** `[::1]` -> `::1`; a bare IPv6 address (more than one colon) must be bracketed, or the port is ambiguous. */
function unbracket(host: string, invalid: (why: string) => DiskError): string {
  if (host.startsWith('[') && host.endsWith(']')) return host.slice(1, -1);
  if (host.includes(':') || host.includes('[') || host.includes(']')) throw invalid(`bad host '${host}'`);
  return host.toLowerCase();
}

function parsePort(text: string, invalid: (why: string) => DiskError): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw invalid(`bad port '${text}'`);
  return port;
}

function parseQuery(query: string | undefined, invalid: (why: string) => DiskError): Map<string, string> {
  const params = new Map<string, string>();
  if (query === undefined || query === '') return params;
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    const key = decode(equals < 0 ? pair : pair.slice(0, equals), invalid);
    if (params.has(key)) throw invalid(`parameter '${key}' given twice`);
    params.set(key, equals < 0 ? '' : decode(pair.slice(equals + 1), invalid));
  }
  return params;
}

function decode(text: string, invalid: (why: string) => DiskError): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(`bad percent-encoding in '${text}'`);
  }
}

/** proto.md "Conventions": a name is at most 4096 bytes of UTF-8 without NUL. */
function checkExportName(exportName: string, invalid: (why: string) => DiskError): string {
  if (exportName.includes('\0')) throw invalid('export name contains NUL');
  if (encodeText(exportName).length > MAX_STRING_LENGTH) throw invalid(`export name longer than ${MAX_STRING_LENGTH} bytes`);
  return exportName;
}

/**
 * The one URI for an export, as QEMU prints it for `filename` (`nbd://127.0.0.1:10809/disk`,
 * `nbd+unix:///disk?socket=/run/nbd.sock`): always with the port, the export percent-encoded. Two names for the
 * same export (a legacy form, a default port, `nbd+tcp`) give the same string, which is what loop detection needs.
 */
export function formatNbdUri(target: NbdTarget): string {
  const exportPath = target.exportName.split('/').map(encodeURIComponent).join('/');
  const { address } = target;
  if (address.kind === 'unix') return `nbd+unix:///${exportPath}?socket=${encodeURI(address.path).replace(/[?&#]/g, encodeURIComponent)}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `nbd://${host}:${address.port}/${exportPath}`;
}

/** How messages name where a server is, as qemu-img does: `127.0.0.1:10809` or a socket path. */
export function describeAddress(address: NbdAddress): string {
  return address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
}
