import { blockStatusReply } from './block-status.js';
import type { NegotiatedSession } from './handshake.js';
import { NbdRequestError, nbdErrno } from './nbd-error.js';
import { isDiskError } from '@q/raw';
import { exportIsReadOnly, type NbdExport } from './nbd-export.js';
import {
  MAX_PAYLOAD,
  NBD_CMD_BLOCK_STATUS,
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
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
} from './protocol.js';
import { readReply } from './read-reply.js';
import { errorChunk, noneChunk, simpleReply } from './replies.js';
import { commandName, flagsAllowed, type NbdRequest } from './request.js';

/** What running a request gave: the reply to send, and whether it succeeded. */
export interface RequestOutcome {
  /** Parts to be written back to back. */
  reply: Uint8Array[];
  /**
   * False when the request failed. A device call that failed may still have parts of its I/O running on the
   * request's payload, so that buffer must not be reused.
   */
  ok: boolean;
}

/**
 * Runs one request against the export's device and returns the reply to send. Never throws: every failure becomes
 * an error reply for this request alone (proto.md "Error values"), so one bad request or one failing sector never
 * takes the connection down. `allocate` gives the buffers a READ reply is built in (default: new ones).
 */
export async function executeRequest(
  nbdExport: NbdExport,
  session: NegotiatedSession,
  request: NbdRequest,
  payload: Uint8Array | undefined,
  log?: (message: string) => void,
  allocate?: (length: number) => Uint8Array,
): Promise<RequestOutcome> {
  try {
    return { reply: await run(nbdExport, session, request, payload, allocate), ok: true };
  } catch (error) {
    const errno = nbdErrno(error);
    const message = error instanceof Error ? error.message : String(error);
    if (!(error instanceof NbdRequestError)) log?.(`${commandName(request.type)} at ${request.offset ?? '?'} failed: ${message}`);
    return { reply: errorReply(session, request, errno, message), ok: false };
  }
}

/** An error reply: a structured ERROR chunk when negotiated (READ must not get a simple one), else a simple reply. */
export function errorReply(session: NegotiatedSession, request: NbdRequest, errno: number, message: string): Uint8Array[] {
  return session.structuredReplies ? [errorChunk(request.handle, errno, message)] : [simpleReply(request.handle, errno)];
}

async function run(
  nbdExport: NbdExport,
  session: NegotiatedSession,
  request: NbdRequest,
  payload: Uint8Array | undefined,
  allocate: ((length: number) => Uint8Array) | undefined,
): Promise<Uint8Array[]> {
  const { device } = nbdExport;
  const { handle, length, flags } = request;
  if (!flagsAllowed(request)) throw new NbdRequestError(NBD_EINVAL, `unknown ${commandName(request.type)} or flags 0x${flags.toString(16)}`);
  const success = (): Uint8Array[] => [session.structuredReplies ? noneChunk(handle) : simpleReply(handle, 0)];
  if (request.type === NBD_CMD_FLUSH) {
    await device.flush();
    return success();
  }

  const writes = request.type === NBD_CMD_WRITE || request.type === NBD_CMD_TRIM || request.type === NBD_CMD_WRITE_ZEROES;
  // proto.md "Error values": EPERM for changes to a read-only export, checked before anything else about them.
  if (writes && exportIsReadOnly(nbdExport)) throw new NbdRequestError(NBD_EPERM, 'the export is read-only');
  const offset = request.offset;
  if (offset === undefined || offset + length > device.size) {
    // The spec asks for ENOSPC when a write runs past the end, EINVAL for other requests outside the export.
    const errno = request.type === NBD_CMD_WRITE || request.type === NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
    throw new NbdRequestError(errno, `${commandName(request.type)} at ${offset ?? 'a huge offset'} length ${length} is past the end (${device.size} bytes)`);
  }

  switch (request.type) {
    case NBD_CMD_READ: {
      if (length > MAX_PAYLOAD) throw new NbdRequestError(NBD_EINVAL, `read of ${length} bytes is above the ${MAX_PAYLOAD}-byte limit`);
      if ((flags & NBD_CMD_FLAG_DF) !== 0 && !session.structuredReplies) throw new NbdRequestError(NBD_EINVAL, 'DF needs structured replies');
      return readReply(device, handle, offset, length, { structured: session.structuredReplies, fragment: (flags & NBD_CMD_FLAG_DF) === 0, allocate });
    }
    case NBD_CMD_WRITE:
      await device.write(payload ?? new Uint8Array(0), offset);
      break;
    case NBD_CMD_TRIM:
      await device.discard(offset, length);
      break;
    case NBD_CMD_WRITE_ZEROES:
      if ((flags & NBD_CMD_FLAG_FAST_ZERO) === 0) await device.writeZeroes(offset, length, { unmap: (flags & NBD_CMD_FLAG_NO_HOLE) === 0 });
      else {
        // FAST_ZERO: only if the device can do it without writing data (a qcow2 zero flag); otherwise ENOTSUP at
        // once, so the client falls back to writing (proto.md "NBD_CMD_FLAG_FAST_ZERO").
        await device.writeZeroes(offset, length, { unmap: (flags & NBD_CMD_FLAG_NO_HOLE) === 0, fast: true }).catch((error: unknown) => {
          throw isDiskError(error) && error.code === 'E_UNSUPPORTED' ? new NbdRequestError(NBD_ENOTSUP, error.message) : error;
        });
      }
      break;
    case NBD_CMD_BLOCK_STATUS: {
      // proto.md "Metadata querying": without a selected context the request is invalid; lengths of 0 have no
      // descriptor to return.
      if (session.contexts.length === 0) throw new NbdRequestError(NBD_EINVAL, 'no metadata context was selected');
      if (length === 0) throw new NbdRequestError(NBD_EINVAL, 'block status of an empty range');
      return blockStatusReply(handle, session.contexts, offset, length, (flags & NBD_CMD_FLAG_REQ_ONE) !== 0);
    }
    default:
      throw new NbdRequestError(NBD_EINVAL, `unknown ${commandName(request.type)}`);
  }
  // proto.md "Ordering of messages and writes": no reply to a FUA request before its data is durable.
  if ((flags & NBD_CMD_FLAG_FUA) !== 0) await device.flush();
  return success();
}
