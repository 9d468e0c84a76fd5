import type { ByteReader } from './byte-reader.js';
import { errorReply, executeRequest } from './execute-request.js';
import type { NegotiatedSession } from './handshake.js';
import { NbdProtocolError } from './nbd-error.js';
import type { NbdExport } from './nbd-export.js';
import { MAX_PAYLOAD, NBD_CMD_DISC, NBD_CMD_WRITE, NBD_EINVAL, NBD_ESHUTDOWN } from './protocol.js';
import { REQUEST_HEADER_LENGTH, parseRequestHeader } from './request.js';
import type { NbdTransport } from './transport.js';
import { BufferLease, POOLED_PAYLOAD, PayloadBuffers } from './payload-buffers.js';

/**
 * The payload of an oversized WRITE we still read past (and discard) so the connection can go on; beyond this a
 * client is not worth the bandwidth and we hang up instead.
 */
const MAX_SKIPPED_PAYLOAD = 4 * MAX_PAYLOAD;

/** Bytes of payload buffers (WRITE data, READ replies) a connection keeps for reuse (eight 1 MiB requests in flight). */
const KEPT_PAYLOAD_BYTES = 8 * 1024 * 1024;

export interface TransmissionOptions {
  /** Requests of one connection running at once; reading pauses at this many (bounds memory per client). */
  maxInFlight: number;
  shuttingDown: () => boolean;
  log?: (message: string) => void;
}

/**
 * The transmission phase of one connection: reads requests and runs them concurrently (proto.md "Transmission":
 * replies may come in any order, matched by handle), until NBD_CMD_DISC, the client's close, or a protocol error.
 * Resolves once every started request has replied, as proto.md "NBD_CMD_DISC" requires; throws NbdProtocolError
 * when the stream is beyond saving.
 */
export async function runTransmission(
  reader: ByteReader,
  transport: NbdTransport,
  nbdExport: NbdExport,
  session: NegotiatedSession,
  options: TransmissionOptions,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const payloads = new PayloadBuffers(KEPT_PAYLOAD_BYTES);
  const send = (parts: Uint8Array[], sent?: () => void): Promise<void> =>
    // A reply the client is no longer there to receive is not an error of ours.
    transport.write(parts, sent).catch(() => {});
  try {
    for (;;) {
      const header = await reader.read(REQUEST_HEADER_LENGTH);
      if (header === undefined) return;
      const request = parseRequestHeader(header);
      if (request.type === NBD_CMD_DISC) return;
      // Every request from here on gets exactly one reply (send).
      transport.requestStarted?.();

      let payload: Uint8Array | undefined;
      const lease = new BufferLease(payloads);
      if (request.type === NBD_CMD_WRITE) {
        if (request.length > MAX_PAYLOAD) {
          // The payload follows the header whatever we think of it: skip it to stay in step, or give up.
          if (request.length > MAX_SKIPPED_PAYLOAD) throw new NbdProtocolError(`write of ${request.length} bytes`);
          await reader.skip(request.length);
          await send(errorReply(session, request, NBD_EINVAL, `write of ${request.length} bytes is above the ${MAX_PAYLOAD}-byte limit`));
          continue;
        }
        // Large payloads are copied into a reused buffer; small ones mostly arrive in one chunk, viewed uncopied.
        if (request.length < POOLED_PAYLOAD) payload = await reader.readExact(request.length);
        else await reader.readInto((payload = lease.take(request.length)));
      }
      if (options.shuttingDown()) {
        // proto.md "Terminating the transmission phase": requests arriving during shutdown get ESHUTDOWN.
        await send(errorReply(session, request, NBD_ESHUTDOWN, 'server is shutting down'));
        continue;
      }
      const task: Promise<void> = executeRequest(nbdExport, session, request, payload, options.log, (length) => lease.take(length))
        // A failed request's buffers are not reused: parts of its device I/O may still be running on them.
        .then((outcome) => send(outcome.reply, outcome.ok && lease.holds ? () => lease.giveBack() : undefined))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
      while (inFlight.size >= options.maxInFlight) await Promise.race(inFlight);
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}
