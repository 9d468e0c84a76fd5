import { mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeReadOnlyConformance, expectSameBytes } from '@q/raw/conformance';
import { openHttpFile } from './http-file.js';
import type { FetchFunction } from './http-options.js';
import { startNginx, type NginxServer } from './nginx-server.js';

/**
 * HttpBlockFile against a real nginx: the read-only conformance suite, then what only a web server shows: a
 * server that ignores Range, a file replaced while open, 404, coalescing and caching counted in nginx's log.
 */
const root = mkdtempSync(join(tmpdir(), 'q-http-file-'));
mkdirSync(join(root, 'whole'));
mkdirSync(join(root, 'slow'));
let server: NginxServer;
let counter = 0;

beforeAll(async () => {
  server = await startNginx({
    root,
    serverDirectives: 'location /whole/ { max_ranges 0; }\n    location /slow/ { limit_rate 64k; }',
  });
});

afterAll(async () => {
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Puts `bytes` on the server under a fresh name and returns its URL. */
function serve(bytes: Uint8Array, dir = ''): string {
  const name = `${dir}f${counter++}.bin`;
  writeFileSync(join(root, name), bytes);
  return server.url + name;
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + seed + (i >> 10)) & 0xff;
  return bytes;
}

/** A fetch that counts the requests it passes on (and their methods and ranges). */
function countingFetch(): { fetch: FetchFunction; ranges: string[] } {
  const ranges: string[] = [];
  return {
    ranges,
    fetch: (url, init) => {
      ranges.push(new Headers(init.headers).get('range') ?? `${init.method} without range`);
      return globalThis.fetch(url, init);
    },
  };
}

describeReadOnlyConformance('HttpBlockFile (nginx)', { open: async (bytes) => openHttpFile(serve(bytes)) });

// Small blocks and requests make the conformance suite cross block and request boundaries everywhere.
describeReadOnlyConformance('HttpBlockFile (nginx, 4 KiB blocks, 16 KiB requests, 8 KiB cache)', {
  open: async (bytes) => openHttpFile(serve(bytes), { blockSize: 4096, maxRequestBytes: 16384, cacheBytes: 8192 }),
});

describe('HttpBlockFile against nginx', () => {
  it('finds the size from the first ranged GET and caches the first block', async () => {
    const counting = countingFetch();
    const file = await openHttpFile(serve(pattern(200_000, 1)), { fetch: counting.fetch });
    expect(await file.size()).toBe(200_000);
    const dst = new Uint8Array(512);
    await file.read(dst, 0);
    await file.read(dst, 1000);
    expect(counting.ranges).toEqual(['bytes=0-65535']);
    expect(file.capabilities).toEqual({ writable: false, sparse: false });
    await file.close();
  });

  it('merges a burst of neighbouring reads into fewer requests, as nginx logs them', async () => {
    const data = pattern(2 * 1024 * 1024, 2);
    const url = serve(data);
    const path = new URL(url).pathname;
    const counting = countingFetch();
    const file = await openHttpFile(url, { fetch: counting.fetch });
    // 64 reads of 16 KiB, as the engine issues for the clusters of one guest request: 1 MiB from 256 KiB on.
    const reads = Array.from({ length: 64 }, (_, i) => ({ offset: 256 * 1024 + i * 16384, dst: new Uint8Array(16384) }));
    await Promise.all(reads.map(({ dst, offset }) => file.read(dst, offset)));
    for (const { dst, offset } of reads) expectSameBytes(dst, data.subarray(offset, offset + dst.length));
    expect(counting.ranges).toEqual(['bytes=0-65535', 'bytes=262144-1310719']);
    const logged = (await server.accessLog()).filter((entry) => entry.uri === path);
    expect(logged.map((entry) => [entry.status, entry.range])).toEqual([
      [206, 'bytes=0-65535'],
      [206, 'bytes=262144-1310719'],
    ]);
    expect(logged.length).toBeLessThan(reads.length);
    await file.close();
  });

  it('splits a long run at maxRequestBytes and keeps at most maxConcurrentRequests in flight', async () => {
    const data = pattern(1024 * 1024, 3);
    const counting = countingFetch();
    // In flight from the call until the body has been read to its end.
    let inFlight = 0;
    let most = 0;
    const tracking: FetchFunction = async (url, init) => {
      most = Math.max(most, ++inFlight);
      const response = await counting.fetch(url, init);
      const done = new TransformStream<Uint8Array, Uint8Array>({ flush: () => void inFlight-- });
      return new Response(response.body!.pipeThrough(done), response);
    };
    const file = await openHttpFile(serve(data), { fetch: tracking, maxRequestBytes: 256 * 1024, maxConcurrentRequests: 2 });
    const dst = new Uint8Array(1024 * 1024);
    expect(await file.read(dst, 0)).toBe(dst.length);
    expectSameBytes(dst, data);
    // Block 0 came with the open; the rest in runs of at most four 64 KiB blocks, two at a time.
    expect(counting.ranges.slice(1)).toEqual(['bytes=65536-327679', 'bytes=327680-589823', 'bytes=589824-851967', 'bytes=851968-1048575']);
    expect(most).toBe(2);
    await file.close();
  });

  it('serves repeated reads from the cache, within its byte budget', async () => {
    const data = pattern(1024 * 1024, 4);
    const counting = countingFetch();
    const file = await openHttpFile(serve(data), { fetch: counting.fetch, cacheBytes: 128 * 1024 });
    const dst = new Uint8Array(4096);
    for (let round = 0; round < 3; round++) await file.read(dst, 65536 + 100);
    expect(counting.ranges.length).toBe(2);
    // Three more blocks push the block at 64 KiB out of a two-block cache: reading it again goes to the network.
    for (const offset of [131072, 196608, 262144]) await file.read(dst, offset);
    await file.read(dst, 65536 + 100);
    expectSameBytes(dst, data.subarray(65636, 65636 + 4096));
    expect(counting.ranges.length).toBe(6);
    await file.close();
  });

  it('says clearly when the server ignores Range, without downloading the file', async () => {
    const path = join(root, 'whole', 'big.bin');
    writeFileSync(path, new Uint8Array(0));
    truncateSync(path, 256 * 1024 * 1024);
    const started = Date.now();
    const error = await openHttpFile(`${server.url}whole/big.bin`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('the server ignores Range requests') });
    const logged = (await server.accessLog()).filter((entry) => entry.uri === '/whole/big.bin');
    expect(logged.map((entry) => entry.status)).toEqual([200]);
    expect(logged[0]!.bodyBytes).toBeLessThan(64 * 1024 * 1024);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('fails with E_IO "changed" when the file is replaced on the server while open', async () => {
    const data = pattern(512 * 1024, 5);
    const url = serve(data);
    const path = join(root, new URL(url).pathname);
    const file = await openHttpFile(url);
    const dst = new Uint8Array(4096);
    await file.read(dst, 0);
    // Same size, other bytes, another mtime (nginx's ETag is mtime-size, in seconds): written aside, renamed over.
    writeFileSync(`${path}.new`, pattern(512 * 1024, 99));
    utimesSync(`${path}.new`, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    renameSync(`${path}.new`, path);
    // The cached first block is still the version opened; the next read that goes to the network is refused.
    await file.read(dst, 0);
    await expect(file.read(dst, 300 * 1024)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('changed on the server') });
    // And from then on every read, cached or not: no mix of versions.
    await expect(file.read(dst, 0)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('changed on the server') });
    await file.close();
  });

  it('says E_NOT_FOUND for a 404', async () => {
    await expect(openHttpFile(`${server.url}missing.qcow2`)).rejects.toMatchObject({ code: 'E_NOT_FOUND', file: `${server.url}missing.qcow2` });
  });

  it('aborts reads in flight when closed', async () => {
    const file = await openHttpFile(serve(pattern(4 * 1024 * 1024, 6), 'slow/'), { timeoutMs: 60_000 });
    const started = Date.now();
    const reading = file.read(new Uint8Array(3 * 1024 * 1024), 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await file.close();
    await expect(reading).rejects.toMatchObject({ code: 'E_IO', message: 'file is closed' });
    // At 64 KiB/s the read would take most of a minute.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses a name that is not an http(s) URL', async () => {
    await expect(openHttpFile('not a url')).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(openHttpFile('ftp://127.0.0.1/x')).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });
});
