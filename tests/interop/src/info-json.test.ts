import { basename, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';
import { buildCatalog, catalog, type CatalogImage } from './catalog.js';
import { withoutActualSize } from './oracle.js';

// `qcow info --output=json` (and with --backing-chain) against `qemu-img info --output=json`: every key
// equal except actual-size (the host file's allocation, which Node cannot measure the way QEMU does).

function bothInfo(args: string[], cwd: string): { q: unknown; c: unknown } {
  const q = run('qemu-img', ['info', ...args], { cwd });
  expect(q.status, q.stderr).toBe(0);
  const c = qcow(['info', ...args], { cwd });
  expect(c.status, c.stderr).toBe(0);
  return { q: withoutActualSize(JSON.parse(q.stdout)), c: withoutActualSize(JSON.parse(c.stdout)) };
}

describe('qcow info --output=json vs qemu-img info --output=json', () => {
  let s: Scratch;
  let images: Array<CatalogImage & { path: string }>;
  beforeAll(() => {
    s = scratch('interop-infojson-');
    images = buildCatalog(s);
  });
  afterAll(() => s.cleanup());

  catalog.forEach((entry, i) => {
    const fmt = entry.format ? ['-f', entry.format] : [];

    it(`${entry.name}: absolute path, run from /`, () => {
      const { q, c } = bothInfo(['--output=json', ...fmt, images[i]!.path], '/');
      expect(c).toEqual(q);
    });

    it(`${entry.name}: relative path from the image's directory, --backing-chain`, () => {
      const img = images[i]!.path;
      const { q, c } = bothInfo(['--output=json', '--backing-chain', ...fmt, basename(img)], dirname(img));
      expect(Array.isArray(q)).toBe(true);
      expect(c).toEqual(q);
    });
  });

  // Byte for byte (scripts diff it): key order, indents, empty arrays over two lines as qemu-img prints them.
  catalog.forEach((entry, i) => {
    it(`${entry.name}: the same text as qemu-img, but for actual-size`, () => {
      const args = ['info', '--output=json', ...(entry.format ? ['-f', entry.format] : []), images[i]!.path];
      const q = run('qemu-img', args, { cwd: '/' });
      const c = qcow(args, { cwd: '/' });
      expect(c.status, c.stderr).toBe(0);
      const text = (out: string): string => out.replace(/^ *"actual-size": \d+,\n/m, '');
      expect(text(c.stdout)).toBe(text(q.stdout));
    });
  });

  it('a snapshot opened as FILE@SNAP reports the snapshot\'s disk size', () => {
    const img = images[catalog.findIndex((e) => e.name === 'internal snapshots')]!.path;
    const r = qcow(['info', '--output=json', `${img}@one`]);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { 'virtual-size': number })['virtual-size']).toBe(4 * 1024 * 1024);
  });
});
