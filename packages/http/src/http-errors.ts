import { DiskError } from '@q/raw';

/** Statuses that say "try again later" rather than "no": the request may well succeed when repeated. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * A failure worth another try (a dropped connection, a timeout, a 503), carrying the error to report when the
 * tries run out. The retry loop decides by this type, never by a message.
 */
export class TransientFailure extends Error {
  override readonly name = 'TransientFailure';

  constructor(
    readonly error: DiskError,
    /** How long the server asked us to wait (Retry-After), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(error.message);
  }
}

/** The error for an answer with status `status` that is neither 206 nor one the caller handles itself. */
export function statusFailure(response: Response, url: string): DiskError | TransientFailure {
  const { status } = response;
  const said = `HTTP ${status}${response.statusText === '' ? '' : ` ${oneLine(response.statusText)}`}`;
  if (status === 404 || status === 410) {
    return new DiskError('E_NOT_FOUND', `No such file on the server (${said})`, { file: url });
  }
  if (status === 401 || status === 403) {
    return new DiskError('E_IO', `the server refused access (${said})`, { file: url });
  }
  const error = new DiskError('E_IO', `the server answered ${said} for ${url}`, { file: url });
  if (TRANSIENT_STATUSES.has(status)) return new TransientFailure(error, retryAfterMs(response.headers.get('retry-after')));
  return error;
}

/** The file is not the one that was opened any more: a different validator, size or a refused condition. */
export function changedError(url: string, how: string, offset?: number): DiskError {
  return new DiskError('E_IO', `the file changed on the server while it was open (${how}); open it again`, { file: url, offset });
}

/** A 200 to a ranged GET: the whole file is coming, which a store of random reads cannot use. */
export function ignoresRangeError(url: string): DiskError {
  return new DiskError(
    'E_UNSUPPORTED',
    'the server ignores Range requests (it answered 200 with the whole file); serve the image from a server that supports byte ranges',
    { file: url },
  );
}

/** An answer that breaks HTTP's rules for a range: we cannot tell which bytes it holds, so none are used. */
export function badAnswerError(url: string, what: string, offset?: number): DiskError {
  return new DiskError('E_IO', `the server's answer ${what}`, { file: url, offset });
}

export function closedError(url: string): DiskError {
  return new DiskError('E_IO', 'file is closed', { file: url });
}

/** Retry-After in seconds or as an HTTP date (RFC 9110, section 10.2.3), as milliseconds from now. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Text the server chose, fit for a one-line message. */
export function oneLine(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
