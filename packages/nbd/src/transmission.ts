import type { ByteReader } from './byte-reader.js';
import { errorReply, executeRequest } from './execute-request.js';
import type { NegotiatedSession } from './handshake.js';
import { NbdProtocolError } from './nbd-error.js';
import type { NbdExport } from './nbd-export.js';
import { MAX_PAYLOAD, NBD_CMD_DISC, NBD_CMD_WRITE, NBD_EINVAL, NBD_ESHUTDOWN } from './protocol.js';
import { REQUEST_HEADER_LENGTH, parseRequestHeader } from './request.js';
import type { NbdTransport } from './transport.js';
import { PayloadBuffers } from './payload-buffers.js';

/**
 * The payload of an oversized WRITE we still read past (and discard) so the connection can go on; beyond this a
 * client is not worth the bandwidth and we hang up instead.
 */
const MAX_SKIPPED_PAYLOAD = 4 * MAX_PAYLOAD;

/** Bytes of WRITE payload buffers a connection keeps for reuse between requests (eight 1 MiB writes in flight). */
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
  const send = (parts: Uint8Array[]): Promise<void> =>
    // A reply the client is no longer there to receive is not an error of ours.
    transport.write(parts).catch(() => {});
  try {
    for (;;) {
      const header = await reader.read(REQUEST_HEADER_LENGTH);
      if (header === undefined) return;
      const request = parseRequestHeader(header);
      if (request.type === NBD_CMD_DISC) return;
      // Every request from here on gets exactly one reply (send).
      transport.requestStarted?.();

      let payload: Uint8Array | undefined;
      let pooled: Uint8Array | undefined;
      if (request.type === NBD_CMD_WRITE) {
        if (request.length > MAX_PAYLOAD) {
          // The payload follows the header whatever we think of it: skip it to stay in step, or give up.
          if (request.length > MAX_SKIPPED_PAYLOAD) throw new NbdProtocolError(`write of ${request.length} bytes`);
          await reader.skip(request.length);
          await send(errorReply(session, request, NBD_EINVAL, `write of ${request.length} bytes is above the ${MAX_PAYLOAD}-byte limit`));
          continue;
        }
        pooled = payloads.take(request.length);
        if (pooled === undefined) payload = await reader.readExact(request.length);
        else await reader.readInto((payload = pooled));
      }
      if (options.shuttingDown()) {
        // proto.md "Terminating the transmission phase": requests arriving during shutdown get ESHUTDOWN.
        await send(errorReply(session, request, NBD_ESHUTDOWN, 'server is shutting down'));
        continue;
      }
      const task: Promise<void> = executeRequest(nbdExport, session, request, payload, options.log)
        .then((outcome) => {
          if (pooled !== undefined && outcome.ok) payloads.give(pooled);
          return send(outcome.reply);
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
      while (inFlight.size >= options.maxInFlight) await Promise.race(inFlight);
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}
