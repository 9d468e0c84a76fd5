import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { buildCatalog, catalog, type CatalogImage } from './catalog.js';

// `qcow map` against `qemu-img map`, exactly: for every catalog image, and for images whose host files have holes
// (qemu-img then reports "zero": true inside data clusters of preallocated images, and zero extents of raw files).

const safe = catalog.map((entry, i) => ({ entry, i }));

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

/**
 * Holes of the host file, on a disk file system (os.tmpdir(), ext4 here) and on tmpfs (/dev/shm), whose
 * SEEK_DATA granularity is the same 4 KiB but whose preallocation differs (tmpfs fallocate leaves holes to
 * SEEK_DATA). Each case is made by QEMU's tools, then mapped by both.
 */
const holeCases: Array<{ name: string; format?: string; build(dir: string): string }> = [
  {
    name: 'preallocation=metadata, partly written (holes inside data clusters at 4 KiB granularity)',
    build: (dir) => {
      const img = join(dir, 'prealloc.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', img, '4M']);
      qemuIo(img, ['write -P 1 0 64k', 'write -P 2 100k 5k', 'write -P 3 1M 4k', 'write -P 4 2M 192k']);
      return img;
    },
  },
  {
    name: 'preallocation=metadata, 4k clusters, zero writes and discards',
    build: (dir) => {
      const img = join(dir, 'prealloc4k.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata,cluster_size=4k', img, '8M']);
      qemuIo(img, ['write -P 1 0 64k', 'write -P 2 100k 5k', 'write -z 1M 64k', 'discard 2M 64k', 'write -P 5 7M 1k']);
      return img;
    },
  },
  {
    name: 'preallocation=falloc, partly written',
    build: (dir) => {
      const img = join(dir, 'falloc.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=falloc', img, '4M']);
      qemuIo(img, ['write -P 2 100k 5k']);
      return img;
    },
  },
  {
    name: 'clusters written in part (QEMU reports data: the image does not look preallocated)',
    build: (dir) => {
      const img = join(dir, 'partial.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', img, '4M']);
      qemuIo(img, ['write -P 1 0 3k', 'write -P 2 100k 5k', 'write -P 0 1M 64k']);
      return img;
    },
  },
  {
    name: 'a few holes punched into written clusters (data: the image does not look preallocated)',
    build: (dir) => {
      const img = join(dir, 'punched.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', img, '4M']);
      qemuIo(img, ['write -P 1 0 1M', 'write -P 2 2M 64k']);
      run('fallocate', ['-p', '-o', String(0x50000 + 4096), '-l', '8192', img]);
      return img;
    },
  },
  {
    name: 'a sparse raw file (holes as zero extents with offsets)',
    format: 'raw',
    build: (dir) => {
      const img = join(dir, 'sparse.raw');
      qemuImg(['create', '-q', '-f', 'raw', img, '4M']);
      qemuIo(img, ['write -P 1 0 64k', 'write -P 2 100k 5k', 'write -P 3 1M 4k', 'write -P 0 2M 8k', 'discard 3M 4k'], { format: 'raw' });
      return img;
    },
  },
  {
    name: 'a qcow2 overlay over a sparse raw file',
    build: (dir) => {
      const base = join(dir, 'base.raw');
      qemuImg(['create', '-q', '-f', 'raw', base, '4M']);
      qemuIo(base, ['write -P 1 0 64k', 'write -P 2 1M 4k'], { format: 'raw' });
      const img = join(dir, 'overlay.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', img]);
      qemuIo(img, ['write -P 3 512k 4k', 'write -P 4 3M 64k']);
      return img;
    },
  },
  {
    name: 'external data file, preallocation=metadata',
    build: (dir) => {
      const img = join(dir, 'external.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'external.data')},preallocation=metadata`, img, '4M']);
      qemuIo(img, ['write -P 1 0 64k', 'write -P 2 100k 5k']);
      return img;
    },
  },
];

const places: Array<{ label: string; make(): { dir: string; cleanup(): void } }> = [
  {
    label: 'a disk file system',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'interop-map-holes-'));
      return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  { label: 'tmpfs', make: () => scratch('interop-map-holes-') },
];

describe.each(places)('qcow map vs qemu-img map where the host file has holes, on $label', (place) => {
  let where: { dir: string; cleanup(): void };
  beforeAll(() => {
    where = place.make();
  });
  afterAll(() => where.cleanup());

  for (const hole of holeCases) {
    it(hole.name, () => {
      const img = hole.build(where.dir);
      const fmt = hole.format === undefined ? [] : ['-f', hole.format];
      const { q, c } = both(['--output=json', ...fmt, img], '/');
      expect(JSON.parse(c)).toEqual(JSON.parse(q));
      const human = both([...fmt, img], '/');
      expect(human.c).toBe(human.q);
    });
  }

  it('many holes punched into written clusters make an image look preallocated (zero and data)', () => {
    const img = join(where.dir, 'many-punched.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', img, '4M']);
    qemuIo(img, ['write -P 1 0 1M']);
    run('fallocate', ['-p', '-o', String(0x50000 + 65536), '-l', String(65536 * 8), img]);
    const { q, c } = both(['--output=json', img], '/');
    expect(q).toMatch(/"zero": true, "data": true/);
    expect(JSON.parse(c)).toEqual(JSON.parse(q));
  });
});
