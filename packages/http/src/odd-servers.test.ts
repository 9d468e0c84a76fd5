import { describe, expect, it } from 'vitest';
import { expectSameBytes } from '@q/raw/conformance';
import { openHttpFile } from './http-file.js';
import type { FetchFunction, HttpOptions } from './http-options.js';

/**
 * Servers nginx is not: weak ETags, dates only, no validator, ranges other than asked, bodies longer than they
 * say, no Content-Range (a browser hiding it), no total, ranges shorter than asked, encodings. Each is a fetch
 * that builds its answers by hand, so every rule of RFC 9110 the store relies on is seen broken once.
 */
const URL_ = 'http://odd.test/disk.img';
const file = new Uint8Array(300_000).map((_, i) => (i * 13 + (i >> 9)) & 0xff);

interface Asked {
  method: string;
  start: number;
  end: number;
  headers: Headers;
}

/** A fetch that answers each request with `answer`, keeping what was asked. */
function server(answer: (asked: Asked, count: number) => Response): { fetch: FetchFunction; asked: Asked[] } {
  const asked: Asked[] = [];
  return {
    asked,
    fetch: async (_url, init) => {
      const headers = new Headers(init.headers);
      const match = /^bytes=(\d+)-(\d+)$/.exec(headers.get('range') ?? '');
      const request = { method: init.method ?? 'GET', start: Number(match?.[1] ?? 0), end: Number(match?.[2] ?? -1) + 1, headers };
      asked.push(request);
      return answer(request, asked.length);
    },
  };
}

/** A correct 206 for what was asked, with `headers` added (a total other than the file's with `total`). */
function partial(asked: Asked, headers: Record<string, string> = {}, total = file.length): Response {
  const end = Math.min(asked.end, total);
  return new Response(file.slice(asked.start, end), {
    status: 206,
    headers: { 'content-range': `bytes ${asked.start}-${end - 1}/${total}`, 'content-length': String(end - asked.start), ...headers },
  });
}

/** A body that never ends, counting how many bytes were pulled from it. */
function endless(): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 65536;
      controller.enqueue(new Uint8Array(65536));
    },
  });
  return { stream, pulled: () => pulled };
}

const options = (fetch: FetchFunction, more: HttpOptions = {}): HttpOptions => ({ fetch, retries: 0, ...more });

async function readAt(url: string, opts: HttpOptions, offset: number, length: number): Promise<Uint8Array> {
  const opened = await openHttpFile(url, opts);
  try {
    const dst = new Uint8Array(length);
    expect(await opened.read(dst, offset)).toBe(length);
    return dst;
  } finally {
    await opened.close();
  }
}

describe('validators', () => {
  it('never sends a weak ETag in If-Range (it could never match); uses the date, and compares the ETag', async () => {
    let etag = 'W/"v1"';
    const odd = server((asked) => partial(asked, { etag, 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }));
    const opened = await openHttpFile(URL_, options(odd.fetch));
    await opened.read(new Uint8Array(10), 100_000);
    expect(odd.asked[1]!.headers.get('if-range')).toBe('Mon, 01 Jan 2024 00:00:00 GMT');
    etag = 'W/"v2"';
    await expect(opened.read(new Uint8Array(10), 200_000)).rejects.toMatchObject({
      code: 'E_IO',
      message: 'the file changed on the server while it was open (its ETag was W/"v1", now W/"v2"); open it again',
    });
  });

  it('sends a strong ETag in If-Range, and a 200 from another version is the change', async () => {
    let etag = '"v1"';
    const odd = server((asked, count) => (count === 1 ? partial(asked, { etag }) : new Response(endless().stream, { status: 200, headers: { etag } })));
    const opened = await openHttpFile(URL_, options(odd.fetch));
    etag = '"v2"';
    await expect(opened.read(new Uint8Array(10), 100_000)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('its ETag was "v1", now "v2"') });
    expect(odd.asked[1]!.headers.get('if-range')).toBe('"v1"');
  });

  it('catches a change of Last-Modified when there is no ETag, and a missing validator', async () => {
    let headers: Record<string, string> = { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' };
    const odd = server((asked) => partial(asked, headers));
    const opened = await openHttpFile(URL_, options(odd.fetch));
    headers = {};
    await expect(opened.read(new Uint8Array(10), 100_000)).rejects.toMatchObject({ message: expect.stringContaining('its Last-Modified was Mon, 01 Jan 2024 00:00:00 GMT, now missing') });
  });

  it('without any validator, still catches a change of length; a 412 or a 416 is a change too', async () => {
    let total = file.length;
    const odd = server((asked) => partial(asked, {}, total));
    const opened = await openHttpFile(URL_, options(odd.fetch));
    total = 400_000;
    await expect(opened.read(new Uint8Array(10), 100_000)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('its length was 300000, now 400000') });
    for (const status of [412, 416]) {
      const refusing = server((asked, count) => (count === 1 ? partial(asked) : new Response(null, { status })));
      const other = await openHttpFile(URL_, options(refusing.fetch));
      await expect(other.read(new Uint8Array(10), 100_000)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('changed on the server') });
    }
  });
});

describe('answers that break the rules of ranges', () => {
  it('refuses a range that starts elsewhere than asked', async () => {
    const odd = server((asked) => partial({ ...asked, start: asked.start + 512 }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({
      code: 'E_IO',
      message: "the server's answer holds bytes 512-65535 where bytes 0-65535 were asked for",
    });
  });

  it('cuts a longer range than asked to what was asked, without reading the rest', async () => {
    const odd = server((asked) => partial({ ...asked, end: asked.end + 100_000 }));
    expectSameBytes(await readAt(URL_, options(odd.fetch), 70_000, 1000), file.subarray(70_000, 71_000));
  });

  it('refuses a body longer than its own Content-Range, reading no more than one chunk past it', async () => {
    const body = endless();
    const odd = server(() => new Response(body.stream, { status: 206, headers: { 'content-range': `bytes 0-65535/${file.length}` } }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('holds more than the 65536 bytes') });
    expect(body.pulled()).toBeLessThanOrEqual(4 * 65536);
  });

  it('refuses a Content-Length that disagrees with the Content-Range', async () => {
    const odd = server((asked) => partial(asked, { 'content-length': '10' }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('Content-Length 10') });
  });

  it('says a 206 without Content-Range is unusable, naming the CORS header a browser needs', async () => {
    const odd = server((asked) => new Response(file.slice(asked.start, asked.end), { status: 206 }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('Access-Control-Expose-Headers') });
  });

  it('refuses encoded ranges', async () => {
    const odd = server((asked) => partial(asked, { 'content-encoding': 'gzip' }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });

  it('finds a server that ignores Range at open, dropping its endless body after the headers', async () => {
    const body = endless();
    const odd = server(() => new Response(body.stream, { status: 200 }));
    await expect(openHttpFile(URL_, options(odd.fetch))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('ignores Range') });
    expect(body.pulled()).toBeLessThanOrEqual(2 * 65536);
  });
});

describe('servers that give less', () => {
  it('asks again for the rest when a server sends shorter ranges than asked (RFC 9110 allows it)', async () => {
    const odd = server((asked) => partial({ ...asked, end: Math.min(asked.end, asked.start + 10_000) }));
    expectSameBytes(await readAt(URL_, options(odd.fetch), 100_000, 150_000), file.subarray(100_000, 250_000));
  });

  it('takes the size from a HEAD when the Content-Range total is *, and fails clearly when there is none', async () => {
    const star = (asked: Asked): Response =>
      new Response(file.slice(asked.start, asked.end), { status: 206, headers: { 'content-range': `bytes ${asked.start}-${asked.end - 1}/*` } });
    const odd = server((asked) => (asked.method === 'HEAD' ? new Response(null, { headers: { 'content-length': String(file.length) } }) : star(asked)));
    const opened = await openHttpFile(URL_, options(odd.fetch));
    expect(await opened.size()).toBe(file.length);
    const refusing = server((asked) => (asked.method === 'HEAD' ? new Response(null, { status: 405 }) : star(asked)));
    await expect(openHttpFile(URL_, options(refusing.fetch))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('does not say how long') });
  });
});

describe('statuses', () => {
  it('maps permanent statuses to one-line errors at once, naming the status', async () => {
    const cases: [number, string, string][] = [
      [401, 'E_IO', 'the server refused access (HTTP 401 Unauthorized)'],
      [410, 'E_NOT_FOUND', 'No such file on the server (HTTP 410 Gone)'],
      [418, 'E_IO', `the server answered HTTP 418 I'm a teapot for ${URL_}`],
    ];
    for (const [status, code, message] of cases) {
      const odd = server(() => new Response('no', { status, statusText: status === 418 ? "I'm a teapot" : status === 401 ? 'Unauthorized' : 'Gone' }));
      await expect(openHttpFile(URL_, { fetch: odd.fetch, retries: 3, retryDelayMs: 1 })).rejects.toMatchObject({ code, message, file: URL_ });
      expect(odd.asked.length).toBe(1);
    }
  });

  it('sends the headers it is given with every request', async () => {
    const odd = server((asked) => partial(asked));
    await readAt(URL_, options(odd.fetch, { headers: { authorization: 'Bearer t' } }), 100_000, 10);
    expect(odd.asked.map((asked) => asked.headers.get('authorization'))).toEqual(['Bearer t', 'Bearer t']);
  });
});
