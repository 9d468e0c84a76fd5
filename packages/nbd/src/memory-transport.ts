import { ByteReader } from './byte-reader.js';
import type { NbdTransport } from './transport.js';

/** An unbounded queue of chunks that is also an async iterable: one side pushes, the other iterates. */
class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private waiting: ((result: IteratorResult<Uint8Array>) => void) | undefined;
  private ended = false;

  push(chunk: Uint8Array): void {
    if (this.ended) throw new Error('the connection is closed');
    // Copy: the writer may reuse its buffer once write() returns, as with a real socket.
    const copy = chunk.slice();
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      waiting({ value: copy, done: false });
    } else {
      this.chunks.push(copy);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const chunk = this.chunks.shift();
        if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The client's end of an in-memory connection: send raw bytes, read exact replies, see whether it was closed. */
export interface MemoryClientEnd {
  send(bytes: Uint8Array): void;
  /** Closes the client's sending side (the server sees end of input). */
  end(): void;
  /** Exactly `length` bytes from the server, or undefined when it closed before sending them. */
  receive(length: number): Promise<Uint8Array | undefined>;
  /** Resolves once the server has closed the connection. */
  readonly closed: Promise<void>;
}

/**
 * A connected pair without sockets, for driving the server byte by byte in unit tests (and for embedding the
 * server in a page that relays bytes some other way).
 */
export function memoryTransportPair(): { server: NbdTransport; client: MemoryClientEnd } {
  const toServer = new ChunkQueue();
  const toClient = new ChunkQueue();
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const reader = new ByteReader(toClient);
  const server: NbdTransport = {
    incoming: toServer,
    peer: 'memory',
    write: async (parts, sent) => {
      if (toClient.isEnded) throw new Error('the connection is closed');
      for (const part of parts) toClient.push(part);
      sent?.();
    },
    close: () => {
      toClient.end();
      toServer.end();
      markClosed();
    },
  };
  const client: MemoryClientEnd = {
    send: (bytes) => {
      if (!toServer.isEnded) toServer.push(bytes);
    },
    end: () => toServer.end(),
    receive: async (length) => {
      try {
        return await reader.read(length);
      } catch {
        return undefined;
      }
    },
    closed,
  };
  return { server, client };
}
