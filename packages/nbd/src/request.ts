import { NbdProtocolError } from './nbd-error.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  REQUEST_MAGIC,
} from './protocol.js';
import { readOffset, viewOf } from './wire.js';

/** Size of the request header (proto.md "Request message"). */
export const REQUEST_HEADER_LENGTH = 28;

/** One transmission-phase request, as the client sent it. */
export interface NbdRequest {
  flags: number;
  type: number;
  /** Opaque to the server: echoed back byte for byte in every reply to this request. */
  handle: Uint8Array;
  /** Undefined when the 64-bit offset does not fit a safe integer (and so lies past any device). */
  offset: number | undefined;
  length: number;
}

/**
 * Parses a request header. A wrong magic means we have lost the framing (or it was never NBD): there is no way
 * to find the next request, so it is a protocol error and the connection ends.
 */
export function parseRequestHeader(header: Uint8Array): NbdRequest {
  const view = viewOf(header);
  const magic = view.getUint32(0);
  if (magic !== REQUEST_MAGIC) throw new NbdProtocolError(`bad request magic 0x${magic.toString(16)}`);
  return {
    flags: view.getUint16(4),
    type: view.getUint16(6),
    // A copy: the header may be a view into a socket chunk, and the handle outlives this turn.
    handle: header.slice(8, 16),
    offset: readOffset(view, 16),
    length: view.getUint32(24),
  };
}

/**
 * A request header as a client sends it (proto.md "Request message"). `handle` is the low 32 bits of the 64-bit
 * handle (the high half is 0), and the offset goes as two 32-bit halves: no BigInt on a path taken per request.
 */
export function encodeRequestHeader(type: number, flags: number, handle: number, offset: number, length: number): Uint8Array {
  const header = new Uint8Array(REQUEST_HEADER_LENGTH);
  const view = viewOf(header);
  view.setUint32(0, REQUEST_MAGIC);
  view.setUint16(4, flags);
  view.setUint16(6, type);
  view.setUint32(12, handle);
  view.setUint32(16, Math.floor(offset / 0x100000000));
  view.setUint32(20, offset >>> 0);
  view.setUint32(24, length);
  return header;
}

/**
 * The command flags each request may carry (proto.md "Command flags": FUA is valid on every command once
 * SEND_FUA is set; the rest belong to one command each). Anything else earns EINVAL.
 */
const ALLOWED_FLAGS: ReadonlyMap<number, number> = new Map([
  [NBD_CMD_READ, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF],
  [NBD_CMD_WRITE, NBD_CMD_FLAG_FUA],
  [NBD_CMD_DISC, NBD_CMD_FLAG_FUA],
  [NBD_CMD_FLUSH, NBD_CMD_FLAG_FUA],
  [NBD_CMD_TRIM, NBD_CMD_FLAG_FUA],
  [NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO],
  [NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE],
]);

/** Whether the request type is known and its flags all belong to it. */
export function flagsAllowed(request: NbdRequest): boolean {
  const allowed = ALLOWED_FLAGS.get(request.type);
  return allowed !== undefined && (request.flags & ~allowed) === 0;
}

/** A short name for log lines and error messages. */
export function commandName(type: number): string {
  switch (type) {
    case NBD_CMD_READ:
      return 'read';
    case NBD_CMD_WRITE:
      return 'write';
    case NBD_CMD_DISC:
      return 'disconnect';
    case NBD_CMD_FLUSH:
      return 'flush';
    case NBD_CMD_TRIM:
      return 'trim';
    case NBD_CMD_WRITE_ZEROES:
      return 'write zeroes';
    case NBD_CMD_BLOCK_STATUS:
      return 'block status';
    default:
      return `command ${type}`;
  }
}
