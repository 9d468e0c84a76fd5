import type { Socket } from 'node:net';

/** Bytes read ahead of the server before the socket is paused: a few maximal requests' worth at most. */
const HIGH_WATER = 1 << 20;

/** A socket's incoming chunks, and a way to stop taking them (STARTTLS hands the socket to TLS). */
export interface SocketChunks extends AsyncIterable<Uint8Array> {
  /**
   * Stops listening and pauses the socket, so what arrives next stays in the socket for the next reader (node's
   * TLSSocket takes over what a paused socket has buffered). Ends the iteration. Returns how many bytes had arrived
   * and were not yet consumed: bytes the next reader will never see.
   */
  detach(): number;
}

/**
 * A socket's incoming chunks as an async iterable, straight from 'data' events. Node's own async iterator of a
 * Readable goes through 'readable' and read() and costs several promise turns per chunk; at queue depth 1 that
 * overhead is part of every request's latency. Backpressure: past HIGH_WATER unconsumed bytes the socket pauses
 * (TCP then holds the client back) and resumes once the consumer catches up.
 */
export function socketChunks(socket: Socket): SocketChunks {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let waiting: ((result: IteratorResult<Uint8Array>) => void) | undefined;

  const finish = (): void => {
    ended = true;
    const wake = waiting;
    waiting = undefined;
    wake?.({ value: undefined, done: true });
  };
  const onData = (chunk: Uint8Array): void => {
    const wake = waiting;
    if (wake !== undefined) {
      waiting = undefined;
      wake({ value: chunk, done: false });
      return;
    }
    queue.push(chunk);
    queued += chunk.length;
    if (queued > HIGH_WATER) socket.pause();
  };
  socket.on('data', onData);
  socket.once('end', finish);
  socket.once('close', finish);

  const iterator: AsyncIterator<Uint8Array> = {
    next: () => {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        if (socket.isPaused() && queued <= HIGH_WATER / 2) socket.resume();
        return Promise.resolve({ value: chunk, done: false });
      }
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    return: () => {
      finish();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return {
    [Symbol.asyncIterator]: () => iterator,
    detach: () => {
      // Pause first: a flowing stream keeps emitting 'data' with no listener, and those bytes would be lost.
      socket.pause();
      socket.off('data', onData);
      socket.off('end', finish);
      socket.off('close', finish);
      const unread = queued;
      queue.length = 0;
      queued = 0;
      finish();
      return unread;
    },
  };
}
