import { DiskError, isDiskError } from '@q/raw';
import { dropBody } from './body-reader.js';
import { changedError, closedError, ignoresRangeError, statusFailure, TransientFailure } from './http-errors.js';
import type { ResolvedHttpOptions } from './http-options.js';
import { requestRange, type FileVersion, type RangeAnswer } from './range-request.js';
import { trySignal } from './request-signal.js';
import { withRetries } from './retry.js';

/**
 * The requests of one open file: the open (which finds the size and the version), then ranged reads checked
 * against that version, each with retries. Once the file is seen to have changed every later request fails the
 * same way, so that no read after the change can mix versions, even one the cache above could answer.
 */
export class RangeClient {
  private readonly closing = new AbortController();
  private opened: FileVersion | undefined;
  private failure: DiskError | undefined;

  constructor(
    readonly url: string,
    readonly name: string,
    private readonly options: ResolvedHttpOptions,
  ) {}

  /** The size and version found by `open`. */
  get version(): FileVersion {
    if (this.opened === undefined) throw new Error('RangeClient used before open');
    return this.opened;
  }

  /**
   * Opens with a ranged GET of the first `length` bytes, whose Content-Range gives the size (a HEAD only when it
   * does not: some servers refuse HEAD). A server that answers 200 is found here, with its body dropped unread.
   * Returns the bytes fetched (fewer when the file is shorter) for the caller to keep.
   */
  async open(length: number): Promise<Uint8Array> {
    const answer = await this.retrying(() => requestRange(this.request(0, length, undefined), this.options));
    if (answer.kind === 'whole') {
      // nginx answers a range of an empty file with 200 and no body: there is nothing to read by range anyway.
      if (answer.length !== 0) throw ignoresRangeError(this.name);
      this.opened = { size: 0, validator: answer.validator };
      return new Uint8Array(0);
    }
    if (answer.kind === 'changed') throw new Error('an open has no version to change from');
    if (answer.kind === 'unsatisfiable') {
      // Only an empty file cannot satisfy a range from byte 0.
      if (answer.total !== 0) throw new DiskError('E_IO', `the server answered 416 to a range from byte 0 (length ${answer.total ?? 'not given'})`, { file: this.name });
      this.opened = { size: 0, validator: answer.validator };
      return new Uint8Array(0);
    }
    const size = answer.total ?? (await this.headSize());
    this.opened = { size, validator: answer.validator };
    return answer.bytes;
  }

  /**
   * Bytes `start` to `end` (within the size), in as many requests as the server needs: RFC 9110 lets it send a
   * shorter range than asked, and the rest is asked for again. Every answer is checked against the version.
   */
  async fetch(start: number, end: number): Promise<Uint8Array> {
    const version = this.version;
    if (end > version.size) throw new DiskError('E_INVALID', `range ${start}-${end} past the end (${version.size})`, { file: this.name, offset: start });
    const out = new Uint8Array(end - start);
    for (let at = start; at < end; ) {
      const answer = await this.retrying(() => requestRange(this.request(at, end, version), this.options));
      if (answer.kind === 'changed') throw this.fail(changedError(this.name, answer.how, at));
      if (answer.kind === 'whole') throw this.fail(ignoresRangeError(this.name));
      if (answer.kind === 'unsatisfiable') throw this.fail(changedError(this.name, `it is shorter than the ${version.size} bytes it had`, at));
      out.set(answer.bytes, at - start);
      at += answer.bytes.length;
    }
    return out;
  }

  /** Whether the server has the file: any answer to a one-byte range but 404 or 410, which are E_NOT_FOUND. */
  async probe(): Promise<boolean> {
    try {
      await this.retrying(() => requestRange(this.request(0, 1, undefined), this.options));
      return true;
    } catch (error) {
      if (isDiskError(error) && error.code === 'E_NOT_FOUND') return false;
      throw error;
    } finally {
      this.close();
    }
  }

  /**
   * Throws what made the file unusable (a change on the server), so that reads the cache could answer fail too:
   * bytes of the old version must not be handed out beside the knowledge that it is gone.
   */
  checkUsable(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Aborts every request in flight and every wait between retries. */
  close(): void {
    this.closing.abort();
  }

  private request(start: number, end: number, version: FileVersion | undefined) {
    return { url: this.url, name: this.name, start, end, version, closing: this.closing.signal };
  }

  private async retrying(attempt: () => Promise<RangeAnswer>): Promise<RangeAnswer> {
    if (this.closing.signal.aborted) throw closedError(this.name);
    if (this.failure !== undefined) throw this.failure;
    return withRetries(attempt, this.options, this.closing.signal, this.name);
  }

  /** A change seen by one request is the file's state from now on; other failures may pass. */
  private fail(error: DiskError): DiskError {
    this.failure ??= error;
    return this.failure;
  }

  /** The size from a HEAD's Content-Length, for servers whose Content-Range total is `*`. */
  private async headSize(): Promise<number> {
    const size = await withRetries(
      async () => {
        const attempt = trySignal(this.closing.signal, this.options.timeoutMs);
        try {
          const response = await this.options.fetch(this.url, { method: 'HEAD', headers: new Headers(this.options.headers), signal: attempt.signal });
          dropBody(response);
          if (!response.ok) throw statusFailure(response, this.name);
          const length = Number(response.headers.get('content-length') ?? NaN);
          return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
        } catch (error) {
          if (this.closing.signal.aborted) throw closedError(this.name);
          if (isDiskError(error) || error instanceof TransientFailure) throw error;
          throw new TransientFailure(new DiskError('E_IO', `HEAD failed: ${(error as Error).message}`, { file: this.name, cause: error }));
        } finally {
          attempt.dispose();
        }
      },
      this.options,
      this.closing.signal,
      this.name,
    ).catch(() => undefined);
    if (size === undefined) {
      throw new DiskError('E_UNSUPPORTED', 'the server does not say how long the file is (no total in Content-Range, no Content-Length)', { file: this.name });
    }
    return size;
  }
}
