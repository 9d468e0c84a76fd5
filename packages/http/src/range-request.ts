import { DiskError, isDiskError } from '@q/raw';
import { readBody, dropBody } from './body-reader.js';
import { parseContentRange, rangeHeader } from './content-range.js';
import { badAnswerError, closedError, oneLine, statusFailure, TransientFailure } from './http-errors.js';
import type { ResolvedHttpOptions } from './http-options.js';
import { trySignal } from './request-signal.js';
import { ifRangeValue, validatorChange, validatorOf, type Validator } from './validator.js';

/** The version of the file an open found; later answers are checked against it. */
export interface FileVersion {
  readonly size: number;
  readonly validator: Validator;
}

/**
 * What one ranged GET came back with. `range`: bytes from `start` on (at least one, possibly fewer than asked:
 * RFC 9110 lets a server send less). `whole`: a 200, the server ignored Range (its body was dropped unread;
 * `length` is its Content-Length).
 * `unsatisfiable`: a 416, the start lies past the end; `total` is the length the server gave. `changed`: the
 * answer is from another version of the file than the one opened (`how` says what differs); no bytes were read.
 */
export type RangeAnswer =
  | { readonly kind: 'range'; readonly bytes: Uint8Array; readonly total: number | undefined; readonly validator: Validator }
  | { readonly kind: 'whole'; readonly length: number | undefined; readonly validator: Validator }
  | { readonly kind: 'unsatisfiable'; readonly total: number | undefined; readonly validator: Validator }
  | { readonly kind: 'changed'; readonly how: string };

export interface RangeRequest {
  readonly url: string;
  /** The name errors carry (as the user gave it). */
  readonly name: string;
  readonly start: number;
  readonly end: number;
  /** The version opened; undefined for the request that opens the file. */
  readonly version: FileVersion | undefined;
  /** Aborted when the file closes. */
  readonly closing: AbortSignal;
}

/**
 * One try of `GET` with `Range: bytes=start-(end-1)`, If-Range when a version is known, and a time limit over
 * headers and body together. Headers are checked before any byte is read: a change of version or size is the
 * answer `changed` (the caller decides what it means for the file), an answer with a range we did not ask for is
 * refused. Transient failures are thrown as TransientFailure for the retry loop.
 */
export async function requestRange(request: RangeRequest, options: ResolvedHttpOptions): Promise<RangeAnswer> {
  const { url, name, start, end, version } = request;
  const headers = new Headers(options.headers);
  headers.set('range', rangeHeader(start, end));
  const ifRange = version === undefined ? undefined : ifRangeValue(version.validator);
  if (ifRange !== undefined) headers.set('if-range', ifRange);
  const attempt = trySignal(request.closing, options.timeoutMs);
  try {
    const response = await options.fetch(url, { method: 'GET', headers, signal: attempt.signal, redirect: 'follow' });
    const validator = validatorOf(response.headers);
    const change = version === undefined ? undefined : validatorChange(version.validator, validator);
    if (response.status === 206) {
      if (change !== undefined) {
        dropBody(response);
        return { kind: 'changed', how: change };
      }
      return await rangeBody(response, request, validator);
    }
    dropBody(response);
    // A changed file answers an If-Range with 200 and a conditional request with 412: both are the change.
    if (change !== undefined && (response.status === 200 || response.status === 412 || response.status === 416)) {
      return { kind: 'changed', how: change };
    }
    if (response.status === 200) {
      const length = Number(response.headers.get('content-length') ?? NaN);
      return { kind: 'whole', length: Number.isSafeInteger(length) ? length : undefined, validator };
    }
    if (response.status === 412) return { kind: 'changed', how: 'the server says it is not the version opened' };
    if (response.status === 416) {
      return { kind: 'unsatisfiable', total: parseContentRange(response.headers.get('content-range'))?.total, validator };
    }
    throw statusFailure(response, name);
  } catch (error) {
    if (request.closing.aborted) throw closedError(name);
    if (attempt.timedOut()) {
      throw new TransientFailure(new DiskError('E_IO', `no complete answer within ${options.timeoutMs} ms from ${url}`, { file: name, offset: start }));
    }
    if (isDiskError(error) || error instanceof TransientFailure) throw error;
    throw new TransientFailure(new DiskError('E_IO', `network error: ${describe(error)} (${url})`, { file: name, offset: start, cause: error }));
  } finally {
    attempt.dispose();
  }
}

/** Checks a 206's Content-Range against what was asked and the version opened, then reads the bytes wanted. */
async function rangeBody(response: Response, request: RangeRequest, validator: Validator): Promise<RangeAnswer> {
  const { name, start, end, version } = request;
  const header = response.headers.get('content-range');
  const range = parseContentRange(header);
  if (header === null) {
    dropBody(response);
    // A browser hides headers a cross-origin server does not expose, which is the usual reason for this.
    throw new DiskError(
      'E_UNSUPPORTED',
      'the server answered 206 without a Content-Range header (a server for browsers must list Content-Range in Access-Control-Expose-Headers)',
      { file: name, offset: start },
    );
  }
  if (range === undefined || range.first === undefined || range.last === undefined) {
    dropBody(response);
    throw badAnswerError(name, `has a malformed Content-Range (${oneLine(header)})`, start);
  }
  if (version !== undefined && range.total !== undefined && range.total !== version.size) {
    dropBody(response);
    return { kind: 'changed', how: `its length was ${version.size}, now ${range.total}` };
  }
  const total = range.total ?? version?.size;
  const wantedLast = Math.min(end, total ?? end) - 1;
  if (range.first !== start) {
    dropBody(response);
    throw badAnswerError(name, `holds bytes ${range.first}-${range.last} where bytes ${start}-${end - 1} were asked for`, start);
  }
  const encoding = response.headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
    // fetch would hand us decoded bytes while the range counts encoded ones.
    dropBody(response);
    throw new DiskError('E_UNSUPPORTED', `the server encodes ranges (Content-Encoding: ${oneLine(encoding)}); a byte range of it is not a byte range of the file`, {
      file: name,
      offset: start,
    });
  }
  const span = range.last - range.first + 1;
  const length = response.headers.get('content-length');
  if (length !== null && Number(length) !== span) {
    dropBody(response);
    throw badAnswerError(name, `says Content-Length ${oneLine(length)} for a range of ${span} bytes`, start);
  }
  const take = Math.min(span, wantedLast - start + 1);
  const bytes = await readBody(response, take, span, name, start);
  return { kind: 'range', bytes, total: range.total, validator };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return oneLine(String(error));
  // Node's fetch says "fetch failed" and keeps the reason (ECONNREFUSED, a certificate error) in `cause`.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return oneLine(`${error.message}${cause}`);
}
