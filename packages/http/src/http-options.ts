import { DiskError } from '@q/raw';

/** The `fetch` this package calls: the global one by default, or one a browser app or a test injects. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

/** How files are fetched. Every number has a default that suits an image on an ordinary web server. */
export interface HttpOptions {
  /** Default: `globalThis.fetch` (Node 20 and browsers). A wrapper can add credentials, count or log requests. */
  fetch?: FetchFunction;
  /** Sent with every request (authorization, a user agent); Range and If-Range are this package's own. */
  headers?: Readonly<Record<string, string>>;
  /** Further tries of a transient failure (network error, timeout, 408, 429, 500, 502, 503, 504). Default 3. */
  retries?: number;
  /** Wait before the first retry, doubling each time (with jitter). Default 250 ms. */
  retryDelayMs?: number;
  /** The longest wait between tries, also for a server's Retry-After. Default 5000 ms. */
  maxRetryDelayMs?: number;
  /** A request (headers and body) that takes longer is aborted and counts as a transient failure. Default 30 s. */
  timeoutMs?: number;
  /** The unit of fetching and caching: reads are widened to whole blocks. Default 64 KiB. */
  blockSize?: number;
  /** The byte budget of the block cache (least recently used blocks go first); 0 turns it off. Default 4 MiB. */
  cacheBytes?: number;
  /** The largest ranged GET neighbouring reads are merged into. Default 4 MiB. */
  maxRequestBytes?: number;
  /** Requests in flight at once per file; more wait. Default 4. */
  maxConcurrentRequests?: number;
  /**
   * How long a missing block waits for neighbours before it is fetched. 0 (the default) still waits for the current
   * turn of the event loop, which is when the engine issues the reads of one guest request.
   */
  coalesceDelayMs?: number;
}

/** HttpOptions with every default filled in and every number checked once. */
export interface ResolvedHttpOptions {
  readonly fetch: FetchFunction;
  readonly headers: Readonly<Record<string, string>>;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly timeoutMs: number;
  readonly blockSize: number;
  readonly cacheBytes: number;
  readonly maxRequestBytes: number;
  readonly maxConcurrentRequests: number;
  readonly coalesceDelayMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export function resolveHttpOptions(options: HttpOptions = {}): ResolvedHttpOptions {
  const fetchFunction = options.fetch ?? defaultFetch();
  const blockSize = count('blockSize', options.blockSize ?? 64 * KiB, 1);
  const maxRequestBytes = count('maxRequestBytes', options.maxRequestBytes ?? 4 * MiB, 1);
  return {
    fetch: fetchFunction,
    headers: { ...options.headers },
    retries: count('retries', options.retries ?? 3, 0),
    retryDelayMs: count('retryDelayMs', options.retryDelayMs ?? 250, 0),
    maxRetryDelayMs: count('maxRetryDelayMs', options.maxRetryDelayMs ?? 5000, 0),
    timeoutMs: count('timeoutMs', options.timeoutMs ?? 30_000, 1),
    blockSize,
    cacheBytes: count('cacheBytes', options.cacheBytes ?? 4 * MiB, 0),
    // A request never covers less than one block, whatever was asked.
    maxRequestBytes: Math.max(blockSize, maxRequestBytes),
    maxConcurrentRequests: count('maxConcurrentRequests', options.maxConcurrentRequests ?? 4, 1),
    coalesceDelayMs: count('coalesceDelayMs', options.coalesceDelayMs ?? 0, 0),
  };
}

function count(name: string, value: number, least: number): number {
  if (!Number.isSafeInteger(value) || value < least) {
    throw new DiskError('E_INVALID', `HTTP option ${name} must be an integer of at least ${least} (got ${value})`);
  }
  return value;
}

function defaultFetch(): FetchFunction {
  const global = (globalThis as { fetch?: FetchFunction }).fetch;
  if (typeof global !== 'function') {
    throw new DiskError('E_UNSUPPORTED', 'this JavaScript runtime has no fetch; pass one as the fetch option');
  }
  // Called unbound, the browsers' fetch throws "Illegal invocation".
  return (url, init) => global.call(globalThis, url, init);
}
