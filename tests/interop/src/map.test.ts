import { basename, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { buildCatalog, catalog, type CatalogImage } from './catalog.js';

// `qcow map` against `qemu-img map`, exactly, for images whose data clusters were written whole (qcow cannot
// see holes in host files, where qemu-img would report "zero": true inside data clusters).

const safe = catalog.map((entry, i) => ({ entry, i })).filter(({ entry }) => entry.mapSafe);

function both(args: string[], cwd: string): { q: string; c: string } {
  const q = run('qemu-img', ['map', ...args], { cwd });
  const c = qcow(['map', ...args], { cwd });
  expect(q.status, q.stderr).toBe(0);
  expect(c.status, c.stderr).toBe(0);
  return { q: q.stdout, c: c.stdout };
}

describe('qcow map vs qemu-img map', () => {
  let s: Scratch;
  let images: Array<CatalogImage & { path: string }>;
  beforeAll(() => {
    s = scratch('interop-map-');
    images = buildCatalog(s);
  });
  afterAll(() => s.cleanup());

  for (const { entry, i } of safe) {
    const fmt = entry.format ? ['-f', entry.format] : [];

    it(`${entry.name}: --output=json`, () => {
      const img = images[i]!.path;
      const { q, c } = both(['--output=json', ...fmt, img], '/');
      expect(JSON.parse(c)).toEqual(JSON.parse(q));
    });

    it(`${entry.name}: human output, relative path (same lines and exit status)`, () => {
      // qemu-img's human map stops with an error at a compressed cluster (it has no host offset to print).
      const img = images[i]!.path;
      const args = ['map', ...fmt, basename(img)];
      const q = run('qemu-img', args, { cwd: dirname(img) });
      const c = qcow(args, { cwd: dirname(img) });
      expect(c.stdout).toBe(q.stdout);
      expect({ status: c.status, failed: c.stderr !== '' }).toEqual({ status: q.status, failed: q.stderr !== '' });
    });
  }

  const windows: Array<[number, number]> = [
    [0, 65536],
    [4096, 1048576],
    [1048576 + 512, 2 * 1048576],
    [3 * 1048576, 100 * 1048576],
  ];
  for (const [start, length] of windows) {
    it(`--start-offset=${start} --max-length=${length} (v3 64k and the backing chain)`, () => {
      for (const name of ['v3 64k, whole clusters', 'backing chain: raw <- 4k <- 64k, relative names']) {
        const img = images[catalog.findIndex((e) => e.name === name)]!.path;
        const { q, c } = both(['--output=json', `--start-offset=${start}`, `--max-length=${length}`, img], '/');
        expect(JSON.parse(c), name).toEqual(JSON.parse(q));
      }
    });
  }

  const converted: Array<{ label: string; opts: string[] }> = [
    { label: 'convert -O qcow2 cluster_size=4k', opts: ['-o', 'cluster_size=4k'] },
    { label: 'convert -O qcow2 cluster_size=64k', opts: [] },
    { label: 'convert -c -O qcow2', opts: ['-c'] },
    { label: 'convert -O qcow2 extended_l2=on', opts: ['-o', 'extended_l2=on'] },
  ];
  for (const conv of converted) {
    it(`${conv.label} of a raw file written in whole clusters`, () => {
      const src = s.path(`conv-src-${conv.label.length}.raw`);
      qemuImg(['create', '-q', '-f', 'raw', src, '4M']);
      qemuIo(src, ['write -P 0x71 0 256k', 'write -P 0x72 1M 64k', 'write -P 0x73 3M 1M'], { format: 'raw' });
      const img = s.path(`conv-${conv.label.replace(/[^a-z0-9]+/gi, '_')}.qcow2`);
      qemuImg(['convert', ...conv.opts, '-O', 'qcow2', src, img]);
      const { q, c } = both(['--output=json', img], '/');
      expect(JSON.parse(c)).toEqual(JSON.parse(q));
    });
  }
});
