import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';
import { yieldTurn } from '@q/test-support/yield-setup';
import { made } from './side-by-side.js';

/** Runs `measure ARGS` with both tools in `dir`: same exit code, same stdout byte for byte, same stderr. */
function same(dir: string, args: string[]): void {
  const theirs = run('qemu-img', ['measure', ...args], { cwd: dir });
  const mine = qcow(['measure', ...args], { cwd: dir });
  expect.soft(mine.status, `exit code of measure ${args.join(' ')}: ${mine.stderr}`).toBe(theirs.status);
  expect.soft(mine.stdout, `stdout of measure ${args.join(' ')}`).toBe(theirs.stdout);
  expect.soft(mine.stderr, `stderr of measure ${args.join(' ')}`).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:'));
}

describe('qcow measure against qemu-img measure', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('tools-measure-');
    const dir = s.dir;
    made(['-f', 'qcow2', 'img', '100M'], ['write -P 1 0 1M', 'write -z 2M 1M', 'write -P 2 50M 100k'])(dir);
    run('qemu-img', ['snapshot', '-c', 's1', 'img'], { cwd: dir });
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 3 10M 1M', 'img'], { cwd: dir });
    run('qemu-img', ['bitmap', '--add', 'img', 'b1'], { cwd: dir });
    run('qemu-img', ['bitmap', '--add', '-g', '512', 'img', 'a-longer-bitmap-name'], { cwd: dir });
    made(['-f', 'raw', 'disk.raw', '10M'], [])(dir);
    run('qemu-io', ['-f', 'raw', '-c', 'write -P 4 0 100k', '-c', 'write -P 5 5M 3k', 'disk.raw'], { cwd: dir });
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '3M'], { cwd: dir });
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'disk.raw', '-F', 'raw', 'overlay.qcow2'], { cwd: dir });
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 6 8M 64k', 'overlay.qcow2'], { cwd: dir });
  });
  afterAll(() => s.cleanup());

  // A sweep of empty images over sizes, cluster sizes, refcount widths, extended L2 and preallocation.
  // Two minutes of child processes on a busy machine: the worker yields between layouts so vitest's RPC is answered.
  it('--size over a sweep of layouts', async () => {
    const sizes = ['0', '1', '1000', '65536', '65537', '10M', '1G', '10G', '1T', '3T'];
    for (const cluster of ['512', '4k', '64k', '2M']) {
      for (const refcount of ['1', '16', '64']) {
        for (const extended of ['off', 'on']) {
          if (extended === 'on' && (cluster === '512' || cluster === '4k')) continue;
          for (const size of sizes) same(s.dir, ['--output=json', '-O', 'qcow2', '-o', `cluster_size=${cluster},refcount_bits=${refcount},extended_l2=${extended}`, '--size', size]);
          await yieldTurn();
        }
      }
    }
  });

  it('--size with preallocation, compat, raw output and human output', () => {
    for (const prealloc of ['off', 'metadata', 'falloc', 'full']) same(s.dir, ['-O', 'qcow2', '-o', `preallocation=${prealloc}`, '--size', '1G']);
    same(s.dir, ['-O', 'qcow2', '-o', 'compat=0.10', '--size', '5G']);
    same(s.dir, ['-O', 'raw', '--size', '1000']);
    same(s.dir, ['--size', '10G']);
    same(s.dir, ['-O', 'qcow2', '--size', '5M', '-o', 'size=7M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'backing_file=x', '--size', '1M']);
  });

  it('from files: qcow2 with data, zeros, a snapshot and bitmaps; raw; a chain; v2', () => {
    for (const output of ['human', 'json']) {
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-o', 'cluster_size=4k', 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-o', 'compat=0.10', 'img']);
      same(s.dir, [`--output=${output}`, 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-l', 'snapshot.name=s1', 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-l', 's1', 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', 'disk.raw']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-o', 'cluster_size=512', 'disk.raw']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', 'overlay.qcow2']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', 'v2.qcow2']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-o', 'backing_file=x', 'img']);
      same(s.dir, [`--output=${output}`, '-O', 'qcow2', '-o', 'preallocation=full', 'img']);
    }
  });

  it('refusals', () => {
    same(s.dir, []);
    same(s.dir, ['--size', '1G', 'img']);
    same(s.dir, ['img', 'disk.raw']);
    same(s.dir, ['--output=xml', '--size', '1M']);
    same(s.dir, ['--size', '1x', '-O', 'qcow2']);
    same(s.dir, ['--size', '9E', '-O', 'qcow2']);
    same(s.dir, ['-O', 'vmdk', '--size', '1G']);
    same(s.dir, ['-O', 'qcow2', '-o', 'bogus=1', '--size', '1M']);
    same(s.dir, ['-o', 'cluster_size=512', '--size', '1G']);
    same(s.dir, ['-O', 'qcow2', '-o', 'cluster_size=3000', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'refcount_bits=3', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'compat=0.10,refcount_bits=8', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'compat=2', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'lazy_refcounts=maybe', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'preallocation=foo', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=4k', '--size', '1M']);
    same(s.dir, ['-O', 'qcow2', '-o', 'cluster_size=512', '--size', '16T']);
  });
});
