import { DiskError, type BlockFile, type BlockFileCapabilities } from '@q/raw';
import { BlockCache } from './block-cache.js';
import { BlockFetcher } from './block-fetcher.js';
import { closedError } from './http-errors.js';
import { resolveHttpOptions, type HttpOptions } from './http-options.js';
import { RangeClient } from './range-client.js';

/**
 * Opens the file at `url` (http: or https:) for reading with range requests. The open makes one request: a
 * ranged GET of the first block, which proves the server honours Range, gives the size and the version (ETag or
 * Last-Modified) that every later answer must match, and fills the cache with the image header.
 */
export async function openHttpFile(url: string, options: HttpOptions = {}): Promise<HttpBlockFile> {
  return HttpBlockFile.open(url, options);
}

/**
 * A read-only BlockFile over HTTP(S). Reads are widened to whole blocks, served from a small LRU cache or fetched
 * in coalesced ranged GETs (see BlockFetcher); a read comes back short only at the end of the file. A file that
 * changes on the server while open fails every later read with E_IO, never hands out mixed bytes.
 */
export class HttpBlockFile implements BlockFile {
  readonly capabilities: BlockFileCapabilities = { writable: false, sparse: false };
  private closed = false;

  private constructor(
    /** The name as the caller gave it, for messages. */
    readonly name: string,
    /** Where requests go: the canonical URL, without its fragment. */
    readonly url: string,
    private readonly client: RangeClient,
    private readonly fetcher: BlockFetcher,
    private readonly length: number,
    private readonly blockSize: number,
  ) {}

  /** As `openHttpFile`. */
  static async open(name: string, given: HttpOptions = {}): Promise<HttpBlockFile> {
    const options = resolveHttpOptions(given);
    const url = requestUrl(name);
    const client = new RangeClient(url, name, options);
    const head = await client.open(options.blockSize);
    const { size } = client.version;
    const cache = new BlockCache(options.cacheBytes);
    if (head.length === Math.min(size, options.blockSize)) cache.set(0, head);
    const fetcher = new BlockFetcher(client, size, cache, options);
    return new HttpBlockFile(name, url, client, fetcher, size, options.blockSize);
  }

  async read(dst: Uint8Array, offset: number): Promise<number> {
    this.checkOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DiskError('E_INVALID', `invalid offset ${offset}`, { file: this.name });
    const end = Math.min(this.length, offset + dst.length);
    if (offset >= end) return 0;
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    const pending: Promise<Uint8Array>[] = [];
    for (let index = first; index <= last; index++) pending.push(this.fetcher.block(index));
    const blocks = await Promise.all(pending);
    this.checkOpen();
    blocks.forEach((block, i) => {
      const blockStart = (first + i) * this.blockSize;
      const from = Math.max(offset, blockStart);
      const to = Math.min(end, blockStart + block.length);
      dst.set(block.subarray(from - blockStart, to - blockStart), from - offset);
    });
    return end - offset;
  }

  async write(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'files over HTTP are read-only', { file: this.name });
  }

  async truncate(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'files over HTTP are read-only', { file: this.name });
  }

  /** Nothing is ever written, so there is nothing to make durable. */
  async flush(): Promise<void> {
    this.checkOpen();
  }

  async size(): Promise<number> {
    this.checkOpen();
    return this.length;
  }

  /** Aborts requests in flight (their reads fail with E_IO "file is closed") and drops the cache. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fetcher.close(closedError(this.name));
    this.client.close();
  }

  private checkOpen(): void {
    if (this.closed) throw closedError(this.name);
    this.client.checkUsable();
  }
}

/** The URL to request for `name`: canonical, without a fragment (never sent anyway), http: or https: only. */
export function requestUrl(name: string): string {
  let url: URL;
  try {
    url = new URL(name);
  } catch {
    throw new DiskError('E_INVALID', 'not a valid URL', { file: name });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DiskError('E_UNSUPPORTED', `Unknown protocol '${url.protocol.replace(/:$/, '')}' for an HTTP store`, { file: name });
  }
  url.hash = '';
  return url.href;
}
