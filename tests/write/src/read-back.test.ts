import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, l2Coverage, MiB, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { qcowIo } from './harness.js';

// Patterns written by `qcow io` must read back through qemu: every written range with `qemu-io -r -c 'read -P'`,
// zeroed ranges as 0, and every gap between them as what was there before (zeros, the backing file's byte, or
// the byte a compressed image was made of).

interface ReadBackCase {
  name: string;
  size: number;
  clusterSize: number;
  extendedL2?: boolean;
  /** Builds `img.qcow2` in `dir` (qemu-img only); returns the byte unwritten ranges read as. */
  prepare(dir: string, size: number): number;
  /** The raw external data file that must mirror the guest content (data_file_raw=on). */
  rawDataFile?: string;
}

function create(dir: string, size: number, opts: string, extra: string[] = []): number {
  qemuImg(['create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), ...extra, 'img.qcow2', String(size)], { cwd: dir });
  return 0;
}

const plain = (name: string, size: number, clusterSize: number, opts: string, extendedL2 = false): ReadBackCase => ({
  name,
  size,
  clusterSize,
  extendedL2,
  prepare: (dir, sz) => create(dir, sz, opts),
});

const cases: ReadBackCase[] = [
  plain('v3, 64 KiB clusters', 8 * MiB, 64 * KiB, ''),
  plain('v2, 64 KiB clusters', 8 * MiB, 64 * KiB, 'compat=0.10'),
  plain('512-byte clusters, 1-bit refcounts', 8 * MiB, 512, 'cluster_size=512,refcount_bits=1'),
  plain('4 KiB clusters, 64-bit refcounts', 8 * MiB, 4 * KiB, 'cluster_size=4k,refcount_bits=64'),
  plain('extended L2, 32 KiB clusters, 72 MiB', 72 * MiB, 32 * KiB, 'cluster_size=32k,extended_l2=on', true),
  plain('2 MiB clusters', 32 * MiB, 2 * MiB, 'cluster_size=2M'),
  plain('lazy refcounts', 8 * MiB, 64 * KiB, 'lazy_refcounts=on'),
  plain('preallocation=metadata', 8 * MiB, 64 * KiB, 'preallocation=metadata'),
  {
    name: 'overlay on a raw backing file of 0x99',
    size: 8 * MiB,
    clusterSize: 64 * KiB,
    prepare(dir, size) {
      qemuImg(['create', '-q', '-f', 'raw', 'base.raw', String(size)], { cwd: dir });
      qemuIo(join(dir, 'base.raw'), [`write -P 0x99 0 ${size}`], { format: 'raw' });
      create(dir, size, 'cluster_size=64k', ['-b', 'base.raw', '-F', 'raw']);
      return 0x99;
    },
  },
  {
    name: 'compressed image (zstd) of 0x5a',
    size: 8 * MiB,
    clusterSize: 64 * KiB,
    prepare(dir, size) {
      qemuImg(['create', '-q', '-f', 'raw', 'src.raw', String(size)], { cwd: dir });
      qemuIo(join(dir, 'src.raw'), [`write -P 0x5a 0 ${size}`], { format: 'raw' });
      qemuImg(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'img.qcow2'], { cwd: dir });
      return 0x5a;
    },
  },
  {
    name: 'external data file',
    size: 8 * MiB,
    clusterSize: 64 * KiB,
    prepare: (dir, size) => create(dir, size, 'data_file=img.data'),
  },
  {
    name: 'external data file, data_file_raw=on',
    size: 8 * MiB,
    clusterSize: 64 * KiB,
    prepare: (dir, size) => create(dir, size, 'data_file=img.data,data_file_raw=on'),
    rawDataFile: 'img.data',
  },
];

interface Range {
  off: number;
  len: number;
}

/** Non-overlapping ranges in increasing order: single bytes, sector- and cluster-crossing, L2-crossing, the end. */
function ranges(c: ReadBackCase): Range[] {
  const { size, clusterSize: cs } = c;
  const l2 = l2Coverage(cs, c.extendedL2);
  const wanted: Range[] = [
    { off: 0, len: 1 },
    { off: 511, len: 2 },
    { off: 4095, len: 4098 },
    { off: cs - 1, len: 2 },
    { off: 3 * cs + 17, len: 5 * cs + 100 },
    { off: l2 - 300, len: 600 },
    { off: 2 * l2 - cs / 2, len: 3 * cs },
    { off: size / 2 + 3, len: 65537 },
    { off: size - 513, len: 513 },
  ];
  const out: Range[] = [];
  for (const r of wanted) {
    const prev = out.at(-1);
    if (r.off + r.len > size || (prev && r.off < prev.off + prev.len + 512)) continue;
    out.push(r);
  }
  return out;
}

/** Two ranges zeroed after being written: one with `write -z`, one with `write -z -u`. */
function zeroRanges(c: ReadBackCase, taken: Range[]): Range[] {
  const cs = c.clusterSize;
  const candidates = [
    { off: c.size / 4 + 1000, len: 3 * cs },
    { off: (c.size / 4) * 3 - 7, len: 2 * cs + 9 },
  ];
  return candidates.filter((z) => taken.every((r) => z.off + z.len + 512 <= r.off || r.off + r.len + 512 <= z.off));
}

const pattern = (i: number): number => ((i * 37 + 11) % 250) + 1; // never 0 (a clash with the fill byte is bumped)
const verify = (ranges: Array<Range & { p: number }>): string[] => ranges.map((r) => `read -P ${r.p} ${r.off} ${r.len}`);

describe('qcow io writes read back through qemu-io', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-readback-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(c.name, () => {
      const dir = s.path(`case${i}`);
      mkdirSync(dir);
      const fill = c.prepare(dir, c.size);
      const written = ranges(c).map((r, j) => ({ ...r, p: pattern(j) === fill ? pattern(j) + 1 : pattern(j) }));
      const zeroed = zeroRanges(c, written).map((r) => ({ ...r, p: 0 }));
      const commands = [
        ...written.map((r) => `write -P ${r.p} ${r.off} ${r.len}`),
        ...zeroed.map((r) => `write -P 0x6b ${r.off} ${r.len}`),
        ...zeroed.map((r, j) => (j === 0 ? `write -z ${r.off} ${r.len}` : `write -z -u ${r.off} ${r.len}`)),
      ];
      qcowIo(join(dir, 'img.qcow2'), commands);

      const known = [...written, ...zeroed].sort((a, b) => a.off - b.off);
      const gaps: Array<Range & { p: number }> = [];
      let at = 0;
      for (const r of known) {
        if (r.off > at) gaps.push({ off: at, len: r.off - at, p: fill });
        at = r.off + r.len;
      }
      if (at < c.size) gaps.push({ off: at, len: c.size - at, p: fill });

      const reads = verify([...known, ...gaps]);
      const r = run('qemu-io', ['-r', '-f', 'qcow2', ...reads.flatMap((x) => ['-c', x]), 'img.qcow2'], { cwd: dir });
      expect(r.stdout, 'qemu-io read -P').not.toContain('Pattern verification failed');
      expect(r.status, r.stderr).toBe(0);
      if (c.rawDataFile) {
        const raw = run('qemu-io', ['-r', '-f', 'raw', ...reads.flatMap((x) => ['-c', x]), c.rawDataFile], { cwd: dir });
        expect(raw.stdout, 'the raw data file').not.toContain('Pattern verification failed');
        expect(raw.status, raw.stderr).toBe(0);
      }
      const check = run('qemu-img', ['check', 'img.qcow2'], { cwd: dir });
      expect(check.status, check.stdout + check.stderr).toBe(0);
    });
  });
});
