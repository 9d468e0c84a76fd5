import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectSameBytes } from '@q/raw/conformance';
import { openHttpFile } from './http-file.js';
import type { HttpOptions } from './http-options.js';
import { startNginx, type NginxServer } from './nginx-server.js';

/**
 * Transient failures between the store and nginx, made by a small proxy that fails requests as told before it
 * forwards them: statuses, dropped connections, answers that never come, bodies cut in the middle. The store must
 * get through as many as its retry bound allows and then fail clearly, and never retry what is permanent.
 */
type Failure = 503 | 500 | 429 | 403 | 'drop' | 'hang' | 'cut';

const root = mkdtempSync(join(tmpdir(), 'q-http-retries-'));
const data = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
writeFileSync(join(root, 'disk.img'), data);
let nginx: NginxServer;
let proxy: Server;
let proxyUrl: string;
let failures: Failure[] = [];
let seen = 0;

beforeAll(async () => {
  nginx = await startNginx({ root });
  proxy = createServer((req, res) => {
    seen++;
    const failure = failures.shift();
    if (failure === undefined || failure === 'cut') return forward(req, res, failure === 'cut');
    if (failure === 'drop') return void req.socket.destroy();
    if (failure === 'hang') return;
    res.writeHead(failure, failure === 429 ? { 'retry-after': '1' } : {});
    res.end('not now');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  proxyUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/disk.img`;
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await nginx?.stop();
  rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  failures = [];
  seen = 0;
});

/** Passes the request on to nginx; with `cut`, sends the headers and half the first chunk, then drops the line. */
function forward(req: IncomingMessage, res: ServerResponse, cut: boolean): void {
  const upstream = request(`${nginx.url.replace(/\/$/, '')}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    if (!cut) return void answer.pipe(res);
    answer.once('data', (chunk: Uint8Array) => {
      res.write(chunk.subarray(0, chunk.length >> 1), () => res.socket?.destroy());
      answer.destroy();
    });
  });
  upstream.on('error', () => res.socket?.destroy());
  upstream.end();
}

const fast: HttpOptions = { retries: 2, retryDelayMs: 10, timeoutMs: 2000 };

async function readAll(options: HttpOptions, failAfterOpen: Failure[]): Promise<Uint8Array> {
  const file = await openHttpFile(proxyUrl, options);
  failures = failAfterOpen;
  const dst = new Uint8Array(data.length);
  try {
    expect(await file.read(dst, 0)).toBe(data.length);
  } finally {
    await file.close();
  }
  return dst;
}

describe('retries through a failing proxy', () => {
  it('opens after two 503s', async () => {
    failures = [503, 503];
    const file = await openHttpFile(proxyUrl, fast);
    expect(await file.size()).toBe(data.length);
    expect(seen).toBe(3);
    await file.close();
  });

  it('reads after dropped connections, a 500 and a body cut short', async () => {
    expectSameBytes(await readAll(fast, ['drop', 500]), data);
    expectSameBytes(await readAll(fast, ['cut', 'cut']), data);
  });

  it('gives up on an answer that never comes after the timeout, and retries it', async () => {
    const started = Date.now();
    expectSameBytes(await readAll({ ...fast, timeoutMs: 300 }, ['hang']), data);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('waits as long as Retry-After says (up to the cap)', async () => {
    failures = [429];
    const started = Date.now();
    const file = await openHttpFile(proxyUrl, fast);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await file.close();
  });

  it('fails clearly after more failures than the bound, having tried 1 + retries times', async () => {
    failures = [503, 503, 503, 503, 503];
    const error = await openHttpFile(proxyUrl, fast).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_IO', file: proxyUrl });
    expect((error as Error).message).toBe(`the server answered HTTP 503 Service Unavailable for ${proxyUrl} (gave up after 3 tries)`);
    expect(seen).toBe(3);
    failures = [];
    await expect(readAll(fast, ['drop', 'drop', 'drop', 'drop'])).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/^network error: .* \(gave up after 3 tries\)$/) });
  });

  it('does not retry what is permanent: 403 and 404', async () => {
    failures = [403];
    await expect(openHttpFile(proxyUrl, fast)).rejects.toMatchObject({ code: 'E_IO', message: 'the server refused access (HTTP 403 Forbidden)' });
    expect(seen).toBe(1);
    await expect(openHttpFile(proxyUrl.replace('disk.img', 'gone.img'), fast)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(seen).toBe(2);
  });
});
