import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';

// Bad `create` arguments: qemu-img and qcow both exit 1 with one line on stderr. The message must be qemu-img's
// (program name aside), stdout must match (qemu-img prints 'Formatting ...' before it validates some options),
// and no image file may be left behind (qemu-img deletes what it started).

interface BadCase {
  name: string;
  /** Arguments after `create -f qcow2`, the image name `bad.qcow2` included. */
  args: string[];
}

const bad = (name: string, opts: string, size = '1M'): BadCase => ({ name, args: ['-o', opts, 'bad.qcow2', size] });

const cases: BadCase[] = [
  bad('cluster_size=3000 (not a power of two)', 'cluster_size=3000'),
  bad('cluster_size=4M (too large)', 'cluster_size=4M'),
  bad('cluster_size=256 (too small)', 'cluster_size=256'),
  bad('refcount_bits=3', 'refcount_bits=3'),
  bad('refcount_bits=128', 'refcount_bits=128'),
  bad('compat=0.10 with lazy_refcounts=on', 'compat=0.10,lazy_refcounts=on'),
  bad('compat=0.10 with refcount_bits=8', 'compat=0.10,refcount_bits=8'),
  bad('compat=0.10 with extended_l2=on', 'compat=0.10,extended_l2=on'),
  bad('compat=0.10 with compression_type=zstd', 'compat=0.10,compression_type=zstd'),
  bad('compat=0.10 with data_file', 'compat=0.10,data_file=bad.data'),
  bad('extended_l2=on with 8k clusters', 'extended_l2=on,cluster_size=8k'),
  bad('data_file_raw=on without data_file', 'data_file_raw=on'),
  bad('an unknown option', 'bogus=1'),
  bad('preallocation=foo', 'preallocation=foo'),
  bad('compat=2', 'compat=2'),
  bad('compression_type=lz4', 'compression_type=lz4'),
  bad('lazy_refcounts=maybe', 'lazy_refcounts=maybe'),
  bad('16T with 512-byte clusters (L1 table too large)', 'cluster_size=512', '16T'),
  bad('128G+512 with 512-byte clusters (L1 table one entry over 32 MiB)', 'cluster_size=512', '137438953984'),
  { name: 'missing size (no backing file)', args: ['bad.qcow2'] },
];

describe('qcow create with bad arguments', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-create-bad-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(c.name, () => {
      const dirs = { qemu: s.path(`q${i}`), qcow: s.path(`c${i}`) };
      mkdirSync(dirs.qemu);
      mkdirSync(dirs.qcow);
      const args = ['create', '-f', 'qcow2', ...c.args];
      const theirs = run('qemu-img', args, { cwd: dirs.qemu });
      expect(theirs.status, 'qemu-img must refuse this too').toBe(1);
      const theirLines = theirs.stderr.trim().split('\n');
      expect(theirLines, 'qemu-img says one line').toHaveLength(1);

      const mine = qcow(args, { cwd: dirs.qcow });
      expect(mine.status, `qcow stderr: ${mine.stderr}`).toBe(1);
      const lines = mine.stderr.trim().split('\n');
      expect(lines, 'one line on stderr').toHaveLength(1);
      expect.soft(lines[0], 'the message').toBe(theirLines[0]!.replace(/^qemu-img:/, 'qcow:'));
      expect.soft(mine.stdout, 'stdout').toBe(theirs.stdout);
      expect.soft(existsSync(join(dirs.qcow, 'bad.qcow2')), 'image file left behind').toBe(existsSync(join(dirs.qemu, 'bad.qcow2')));
    });
  });
});
