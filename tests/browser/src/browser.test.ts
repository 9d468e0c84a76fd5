import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, type NginxServer } from '@q/http/testing';
import { scratch } from '@q/test-support';
import { bundleForBrowser, type BrowserBundle } from './browser-bundle.js';
import type { ImageDigest } from './browser-entry.js';
import { launchChromium, type ChromiumPage, type HeadlessChromium } from './headless-chromium.js';
import { nodeOnlyFindings } from './node-only-check.js';
import { expectedDigests, IMAGE_FILES, IMAGES, makeImages } from './test-images.js';

/**
 * The core packages bundled for browsers and run in a real headless Chromium: images made by qemu-img, served with
 * the page and the bundle by a real nginx (one origin, so no CORS), opened over HTTP range requests and again from
 * Files in a BlobStore; every guest byte is hashed in the page and must match `qemu-img convert -O raw`.
 */
const PAGE_MS = 60_000;

const site = scratch('q-browser-site-');
const raws = scratch('q-browser-raw-');
let bundle: BrowserBundle;
let expected: Map<string, string>;
let server: NginxServer;
let chromium: HeadlessChromium;
let page: ChromiumPage;

/** An expression for the page: the bundle imported as a module (by URL, as a page's own script would), then `call`. */
const inBundle = (call: string): string => `import(${JSON.stringify(`${server.url}bundle/browser-entry.js`)}).then((entry) => ${call})`;

beforeAll(async () => {
  const images = join(site.dir, 'images');
  mkdirSync(images);
  makeImages(images);
  expected = await expectedDigests(images, raws.dir);
  bundle = await bundleForBrowser(join(site.dir, 'bundle'));
  writeFileSync(join(site.dir, 'index.html'), '<!doctype html>\n<meta charset="utf-8">\n<title>qcow-ts browser test</title>\n');
  // The test nginx has no mime.types: without these a module script is application/octet-stream, which
  // Chromium refuses to run (strict MIME checking for modules).
  server = await startNginx({ root: site.dir });
  chromium = await launchChromium();
  page = await chromium.openPage(`${server.url}index.html`);
});

afterAll(async () => {
  await chromium?.close();
  await server?.stop();
  site.cleanup();
  raws.cleanup();
});

describe('the browser bundle', () => {
  it('holds the core packages and no Node-only import', () => {
    expect(nodeOnlyFindings(bundle)).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    for (const name of ['raw', 'qcow2', 'http', 'format', 'mapper', 'backing', 'bitmaps']) {
      expect(inputs, name).toContain(`../../packages/${name}/dist/index.js`);
    }
    // The engine's lazy import() of the portable codecs stays a file of its own, loaded on demand.
    const lazy = Object.values(bundle.metafile.outputs).flatMap((output) => output.imports.filter((i) => i.kind === 'dynamic-import'));
    expect(lazy.map((i) => i.path)).toEqual([expect.stringMatching(/portable-codecs-[^/]+\.js$/)]);
  });

  it('reads plain, zlib and zstd images and a chain from nginx and from Blobs in Chromium, as qemu-img does', async () => {
    const base = `${server.url}images/`;
    const call = `entry.readImages(${JSON.stringify(base)}, ${JSON.stringify(IMAGES)}, ${JSON.stringify(IMAGE_FILES)})`;
    const digests = (await page.evaluate(inBundle(call), PAGE_MS)) as ImageDigest[];

    const want = (['http', 'blob'] as const).flatMap((source) => IMAGES.map((image) => ({ image, source, size: 4 * 1024 * 1024, sha256: expected.get(image) })));
    expect(digests.map(({ image, source, size, sha256 }) => ({ image, source, size, sha256 }))).toEqual(want);
    // The chain came through whole: relative names resolved against the URL, and against the Files' names.
    const layers = (source: string): string[] | undefined => digests.find((d) => d.image === 'top.qcow2' && d.source === source)?.layers;
    expect(layers('http')).toEqual(['top', 'mid', 'base'].map((name) => `${base}${name}.qcow2`));
    expect(layers('blob')).toEqual(['top.qcow2', 'mid.qcow2', 'base.qcow2']);

    const log = await server.accessLog();
    // httpStore read the images in ranges; the Blobs were whole-file GETs made afterwards.
    expect(log.filter((entry) => entry.uri === '/images/zstd.qcow2' && entry.status === 206).length).toBeGreaterThan(0);
    expect(log.some((entry) => /^\/bundle\/portable-codecs-[^/]+\.js$/.test(entry.uri) && entry.status === 200)).toBe(true);
  });

  it('brings a failure in the page back with its message', async () => {
    const missing = `entry.readImages(${JSON.stringify(`${server.url}images/`)}, ["missing.qcow2"], [])`;
    await expect(page.evaluate(inBundle(missing), PAGE_MS)).rejects.toThrow(/^in the page: Error: http .*\/images\/missing\.qcow2: E_NOT_FOUND /);
    // A bundle that cannot load (here: a name nginx does not have) rejects the import, not a timeout.
    const broken = `import(${JSON.stringify(`${server.url}bundle/no-such-entry.js`)})`;
    await expect(page.evaluate(broken, PAGE_MS)).rejects.toThrow(/^in the page: TypeError: Failed to fetch dynamically imported module/);
  });

  it('bounds a page that never answers, saying what the page logged', async () => {
    const forever = 'new Promise(() => console.log("waiting forever"))';
    await expect(page.evaluate(forever, 1000)).rejects.toThrow(/did not finish within 1000 ms; it said: .*console\.log: waiting forever/);
  });
});
