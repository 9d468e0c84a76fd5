import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { yieldTurn } from '@q/test-support/yield-setup';

// `qcow create` against `qemu-img create` with the same arguments, each in its own directory under the same
// relative names (qemu opens relative backing and data file names from its working directory, so every qemu-img
// call runs in the image's directory). The 'Formatting ...' line, `qemu-img info --output=json` (less filename
// and actual-size), `qemu-img check --output=json` (less filename and image-end-offset) and `qemu-img map
// --output=json` (less host offsets and `zero`, which follows the host file's holes: qemu writes the last cluster
// of a preallocation=metadata image, qcow leaves it sparse) must match, and so must the file sizes of
// preallocation=falloc/full images; `qemu-img check` must pass on qcow's image. Metadata placement is free.

interface CreateCase {
  name: string;
  /** Arguments after `create -f qcow2`; the image is always `img.qcow2`. */
  args: string[];
  /** Omitted: no SIZE argument (taken from the backing file). */
  size?: string;
  /** The backing file is absent on purpose (`-u`): qemu-img opens the image with `backing: null`. */
  noBacking?: boolean;
  /** Name of the external data file the image must have next to it. */
  dataFile?: string;
}

const o = (opts: string): string[] => ['-o', opts];

const cases: CreateCase[] = [
  { name: 'defaults', args: [], size: '1G' },
  { name: 'compat=0.10', args: o('compat=0.10'), size: '1G' },
  { name: 'compat=1.1', args: o('compat=1.1'), size: '1G' },
  ...['512', '4k', '64k', '2M'].map((c) => ({ name: `cluster_size=${c}`, args: o(`cluster_size=${c}`), size: '1G' })),
  ...[1, 2, 4, 8, 16, 32, 64].map((r) => ({ name: `refcount_bits=${r}`, args: o(`refcount_bits=${r}`), size: '1G' })),
  { name: 'refcount_bits=1 with 512-byte clusters', args: o('refcount_bits=1,cluster_size=512'), size: '64M' },
  { name: 'refcount_bits=64 with 2M clusters', args: o('refcount_bits=64,cluster_size=2M'), size: '16G' },
  { name: 'lazy_refcounts=on', args: o('lazy_refcounts=on'), size: '1G' },
  ...['16k', '32k', '64k'].map((c) => ({ name: `extended_l2=on cluster_size=${c}`, args: o(`extended_l2=on,cluster_size=${c}`), size: '1G' })),
  { name: 'compression_type=zstd', args: o('compression_type=zstd'), size: '1G' },
  { name: 'compression_type=zlib', args: o('compression_type=zlib'), size: '1G' },
  ...['metadata', 'falloc', 'full'].flatMap((p) => [
    { name: `preallocation=${p}`, args: o(`preallocation=${p}`), size: '5M' },
    { name: `preallocation=${p} cluster_size=4k`, args: o(`preallocation=${p},cluster_size=4k`), size: '5M' },
    { name: `preallocation=${p} extended_l2=on`, args: o(`preallocation=${p},extended_l2=on`), size: '5M' },
    { name: `preallocation=${p} odd size`, args: o(`preallocation=${p},cluster_size=64k`), size: '3146240' },
  ]),
  { name: 'preallocation=off', args: o('preallocation=off'), size: '5M' },
  { name: 'data_file (relative name)', args: o('data_file=img.data'), size: '1G', dataFile: 'img.data' },
  { name: 'data_file with data_file_raw=on', args: o('data_file=img.data,data_file_raw=on'), size: '1G', dataFile: 'img.data' },
  { name: 'data_file_raw=on with preallocation=full', args: o('data_file=img.data,data_file_raw=on,preallocation=full'), size: '3M', dataFile: 'img.data' },
  { name: '-b qcow2 -F qcow2, size from the backing file', args: ['-b', 'base.qcow2', '-F', 'qcow2'] },
  { name: '-b raw -F raw, size from the backing file', args: ['-b', 'base.raw', '-F', 'raw'] },
  { name: '-b raw -F raw, larger explicit size', args: ['-b', 'base.raw', '-F', 'raw'], size: '8M' },
  { name: '-b with options (4k clusters, v2)', args: ['-b', 'base.qcow2', '-F', 'qcow2', ...o('cluster_size=4k,compat=0.10')] },
  { name: '-u -b missing backing file, explicit size', args: ['-u', '-b', 'missing.qcow2', '-F', 'qcow2'], size: '4M', noBacking: true },
  ...['0', '1536', '1G', '16T'].map((size) => ({ name: `size ${size}`, args: [], size })),
  { name: 'size 128G, 512-byte clusters (the largest L1 table qemu allows: 32 MiB)', args: o('cluster_size=512'), size: '128G' },
  { name: 'size 1000 (not a multiple of 512)', args: [], size: '1000' },
];

/** The name qemu-img is given: the image itself, or a json: spec that opens it without its (missing) backing file. */
function qemuName(c: CreateCase): string {
  return c.noBacking ? 'json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"img.qcow2"}}' : 'img.qcow2';
}

function json(args: string[], cwd: string, drop: (k: string) => boolean): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !drop(k)).map(([k, x]) => [k, strip(x)]));
    return v;
  };
  return strip(JSON.parse(qemuImg(args, { cwd })));
}

/** Map entries without host offsets and zero flags, adjacent equal ranges merged. */
function allocation(map: unknown): unknown[] {
  const out: Record<string, unknown>[] = [];
  for (const e of map as Record<string, unknown>[]) {
    const { offset: _o, zero: _z, ...rest } = e;
    const last = out.at(-1);
    const same = last && ['depth', 'present', 'data'].every((k) => last[k] === rest[k]);
    if (same && (last['start'] as number) + (last['length'] as number) === rest['start']) last['length'] = (last['length'] as number) + (rest['length'] as number);
    else out.push({ ...rest });
  }
  return out;
}

function describeImage(c: CreateCase, dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    info: json(['info', '--output=json', 'img.qcow2'], dir, (k) => k === 'filename' || k === 'actual-size'),
    check: json(['check', '--output=json', qemuName(c)], dir, (k) => k === 'filename' || k === 'image-end-offset'),
    map: allocation(json(['map', '--output=json', qemuName(c)], dir, () => false)),
  };
  if (c.args.some((a) => /preallocation=(falloc|full)/.test(a))) out['size'] = statSync(join(dir, 'img.qcow2')).size;
  if (c.dataFile) out['dataFileSize'] = statSync(join(dir, c.dataFile)).size;
  return out;
}

describe('qcow create against qemu-img create', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-create-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(c.name, async () => {
      const dirs = { qemu: s.path(`q${i}`), qcow: s.path(`c${i}`) };
      for (const dir of Object.values(dirs)) {
        mkdirSync(dir);
        qemuImg(['create', '-q', '-f', 'raw', 'base.raw', String(3 * 1024 * 1024 + 512)], { cwd: dir });
        qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=16k', 'base.qcow2', String(5 * 1024 * 1024 + 1024)], { cwd: dir });
      }
      const args = ['create', '-f', 'qcow2', ...c.args, 'img.qcow2', ...(c.size === undefined ? [] : [c.size])];
      const theirs = run('qemu-img', args, { cwd: dirs.qemu });
      expect(theirs.status, `qemu-img ${args.join(' ')}: ${theirs.stderr}`).toBe(0);
      // Each step may take seconds for the largest image on a busy machine: let vitest's messages through.
      await yieldTurn();
      const mine = qcow(args, { cwd: dirs.qcow });
      expect(mine.status, `qcow ${args.join(' ')}: ${mine.stderr}`).toBe(0);
      expect(mine.stderr).toBe('');
      expect.soft(mine.stdout, 'the Formatting line').toBe(theirs.stdout);

      await yieldTurn();
      const check = run('qemu-img', ['check', qemuName(c)], { cwd: dirs.qcow });
      expect(check.status, `qemu-img check of qcow's image:\n${check.stdout}${check.stderr}`).toBe(0);
      if (c.dataFile) expect(existsSync(join(dirs.qcow, c.dataFile)), 'data file created next to the image').toBe(true);
      await yieldTurn();
      const ours = describeImage(c, dirs.qcow);
      await yieldTurn();
      expect(ours).toEqual(describeImage(c, dirs.qemu));

    });
  });

  it('-q prints nothing and makes the same image', () => {
    const dir = s.path('quiet');
    mkdirSync(dir);
    const r = qcow(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'img.qcow2', '3M'], { cwd: dir });
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'ref.qcow2', '3M'], { cwd: dir });
    expect(run('cmp', ['img.qcow2', 'ref.qcow2'], { cwd: dir }).status, 'byte-identical to qemu-img create -q').toBe(0);
  });
});
