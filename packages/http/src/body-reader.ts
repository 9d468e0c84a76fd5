import { DiskError } from '@q/raw';
import { badAnswerError } from './http-errors.js';

/**
 * Reads the first `take` bytes of a body whose Content-Range says it holds `span` bytes, into a buffer sized once:
 * never more is buffered, whatever the server sends. The rest of a longer range (a server that sent more than
 * asked) is cut off by cancelling the stream; a body longer than its own Content-Range is refused; a body that
 * ends early (a dropped connection) throws a TypeError like fetch's own network errors, so it is retried.
 */
export async function readBody(response: Response, take: number, span: number, url: string, offset: number): Promise<Uint8Array> {
  const out = new Uint8Array(take);
  const body = response.body;
  if (body === null) {
    if (take === 0) return out;
    throw new TypeError(`the body ended after 0 of ${take} bytes`);
  }
  const reader = body.getReader();
  let got = 0;
  try {
    while (got < take) {
      const { done, value } = await reader.read();
      if (done) throw new TypeError(`the body ended after ${got} of ${take} bytes`);
      const room = take - got;
      out.set(value.length <= room ? value : value.subarray(0, room), got);
      got += Math.min(room, value.length);
      if (value.length > room && take === span) throw tooLong(url, span, offset);
    }
    if (take === span) {
      // The body should end here; one more chunk is the most we look at before refusing it.
      const { done, value } = await reader.read();
      if (!done && value.length > 0) throw tooLong(url, span, offset);
    }
    return out;
  } finally {
    // Cancelling releases the connection at once, instead of downloading the rest of a long body for nothing.
    reader.cancel().catch(() => undefined);
  }
}

/** Drops a body we will not read (a 200, an error page), so its bytes are not downloaded. */
export function dropBody(response: Response): void {
  response.body?.cancel().catch(() => undefined);
}

function tooLong(url: string, span: number, offset: number): DiskError {
  return badAnswerError(url, `holds more than the ${span} bytes its Content-Range names`, offset);
}
