import { NbdProtocolError } from './nbd-error.js';

/**
 * Turns a stream of arbitrarily cut chunks (TCP delivers whatever it has) into exact-length reads, which is how
 * every NBD message is framed: a fixed header, then a length-prefixed body. One consumer at a time.
 */
export class ByteReader {
  private iterator: AsyncIterator<Uint8Array>;
  private readonly chunks: Uint8Array[] = [];
  /** Bytes already consumed from `chunks[0]`. */
  private head = 0;
  private buffered = 0;
  private ended = false;
  /** Ends the pull in progress, if any (stop). */
  private interruptPull: (() => void) | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /**
   * Exactly `length` bytes, or undefined when the peer closed cleanly before sending any of them. A close in the
   * middle is a protocol error: the message is cut short and the stream cannot be resynchronised.
   */
  async read(length: number): Promise<Uint8Array | undefined> {
    if (!(await this.fill(length))) {
      if (this.buffered === 0) return undefined;
      throw new NbdProtocolError(`connection closed in the middle of a message (${this.buffered} of ${length} bytes)`);
    }
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= length) {
      // The common case (a header inside one TCP segment): a view, no copy. Chunks are never reused by their
      // producers (node hands out fresh Buffers), so the view stays valid.
      const view = first.subarray(this.head, this.head + length);
      this.consume(length);
      return view;
    }
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length - this.head, length - filled);
      out.set(chunk.subarray(this.head, this.head + take), filled);
      filled += take;
      this.consume(take);
    }
    return out;
  }

  /** `read` that treats a clean close as an error too (inside a message that has started). */
  async readExact(length: number): Promise<Uint8Array> {
    const bytes = await this.read(length);
    if (bytes === undefined) throw new NbdProtocolError(`connection closed while ${length} more bytes were due`);
    return bytes;
  }

  /**
   * Fills all of `dst` with the next `dst.length` bytes, copying each chunk as it arrives; a close before the end
   * is a protocol error. For payloads read into a buffer the caller provides (and reuses).
   */
  async readInto(dst: Uint8Array): Promise<void> {
    let filled = 0;
    while (filled < dst.length) {
      if (this.buffered === 0 && !(await this.pull())) {
        throw new NbdProtocolError(`connection closed while ${dst.length - filled} more bytes were due`);
      }
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length - this.head, dst.length - filled);
      dst.set(chunk.subarray(this.head, this.head + take), filled);
      filled += take;
      this.consume(take);
    }
  }

  /**
   * Up to `max` bytes (at least one) of what has arrived, as a view of one received chunk, never copied; undefined
   * when the peer closed first. For payloads that go straight on into a buffer of their own (a client's READ data),
   * where `read` would first assemble them in a fresh buffer as large as the payload.
   */
  async readSome(max: number): Promise<Uint8Array | undefined> {
    if (this.buffered === 0 && !(await this.pull())) return undefined;
    const first = this.chunks[0]!;
    const take = Math.min(max, first.length - this.head);
    const view = first.subarray(this.head, this.head + take);
    this.consume(take);
    return view;
  }

  /** Drops `length` bytes without keeping them (the payload of a request we refuse). */
  async skip(length: number): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) throw new NbdProtocolError('connection closed while skipping a payload');
      const take = Math.min(left, this.buffered);
      this.consume(take);
      left -= take;
    }
  }

  /** Bytes received and not yet read: after NBD_OPT_STARTTLS there must be none (the client waits for the ACK). */
  get bufferedLength(): number {
    return this.buffered;
  }

  /**
   * Reads from `source` from now on: the TLS upgrade swaps the plaintext socket for the decrypted stream. Only
   * between messages and with nothing buffered, since a byte already read from the old source would otherwise be
   * taken as decrypted data. The old source is left alone: the transport that upgraded owns it. A reader already
   * stopped stays stopped.
   */
  replaceSource(source: AsyncIterable<Uint8Array>): void {
    if (this.buffered !== 0 || this.interruptPull !== undefined) {
      throw new NbdProtocolError(`cannot switch streams with ${this.buffered} bytes unread`);
    }
    this.iterator = source[Symbol.asyncIterator]();
  }

  /**
   * Ends input here as if the peer had closed, without touching the source: a server shutting down stops reading
   * requests but must still send the replies of those already running, over the same connection.
   */
  stop(): void {
    this.ended = true;
    this.interruptPull?.();
  }

  private async fill(length: number): Promise<boolean> {
    while (this.buffered < length) {
      if (!(await this.pull())) return false;
    }
    return true;
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    for (;;) {
      // Not Promise.race against one long-lived "stopped" promise: every race leaves a reaction on it that keeps
      // the race's result (a chunk) alive, so a long connection kept every byte it ever received.
      const next = await new Promise<IteratorResult<Uint8Array> | undefined>((resolve, reject) => {
        this.interruptPull = () => resolve(undefined);
        this.iterator.next().then(resolve, reject);
      });
      this.interruptPull = undefined;
      if (this.ended || next === undefined) return false;
      if (next.done === true) {
        this.ended = true;
        return false;
      }
      if (next.value.length === 0) continue;
      this.chunks.push(next.value);
      this.buffered += next.value.length;
      return true;
    }
  }

  private consume(length: number): void {
    let left = length;
    this.buffered -= length;
    while (left > 0) {
      const chunk = this.chunks[0]!;
      const available = chunk.length - this.head;
      if (left < available) {
        this.head += left;
        return;
      }
      left -= available;
      this.chunks.shift();
      this.head = 0;
    }
  }
}
