import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';
import { made, sideBySide } from './side-by-side.js';

const v3 = made(['-f', 'qcow2', 'img', '10M'], ['write -P 1 0 1M', 'write -z 2M 1M']);
const withSnapshot = made(['-f', 'qcow2', 'img', '10M'], ['write -P 1 0 1M'], [['snapshot', '-c', 's', 'img']]);
const v2 = made(['-f', 'qcow2', '-o', 'compat=0.10', 'img', '10M'], ['write -P 1 0 1M']);
/** Zero clusters (preallocated and plain) in an L2 table the snapshot shares with the active state. */
const zerosShared = ['write -P 1 0 128k', 'write -z 0 64k', 'write -z 192k 64k'];

// qcow amend against qemu-img amend on copies of the same image.
const cases: Array<{ name: string; setup: (dir: string) => void; args: string[]; content?: boolean }> = [
  { name: 'downgrade to compat 0.10 (zero clusters without a backing file become unallocated)', setup: v3, args: ['-o', 'compat=0.10', 'img'] },
  {
    name: 'downgrade over a backing file (zero clusters become written zeros)',
    setup: (dir) => {
      made(['-f', 'raw', 'base', '10M'], [])(dir);
      made(['-f', 'qcow2', '-b', 'base', '-F', 'raw', 'img'], ['write -z 0 2M', 'write -P 3 4M 64k'])(dir);
    },
    args: ['-o', 'compat=0.10', 'img'],
  },
  {
    name: 'downgrade with a snapshot sharing zero clusters (no backing file: plain ones become unallocated)',
    setup: made(['-f', 'qcow2', 'img', '4M'], zerosShared, [['snapshot', '-c', 's', 'img']]),
    args: ['-o', 'compat=0.10', 'img'],
  },
  {
    name: 'downgrade with a snapshot over a backing file (a shared zero cluster gets one cluster, counted twice)',
    setup: (dir) => {
      made(['-f', 'raw', 'base', '4M'], [])(dir);
      made(['-f', 'qcow2', '-b', 'base', '-F', 'raw', 'img', '4M'], zerosShared, [['snapshot', '-c', 's', 'img']])(dir);
    },
    args: ['-o', 'compat=0.10', 'img'],
  },
  {
    name: 'downgrade of a zstd image without compressed clusters (it becomes zlib)',
    setup: made(['-f', 'qcow2', '-o', 'compression_type=zstd', 'img', '10M'], ['write -P 1 0 1M', 'write -z 2M 1M']),
    args: ['-o', 'compat=0.10', 'img'],
  },
  {
    name: 'downgrade of a zstd image with compressed clusters is refused',
    setup: made(['-f', 'qcow2', '-o', 'compression_type=zstd', 'img', '10M'], ['write -c -P 1 0 64k']),
    args: ['-o', 'compat=0.10', 'img'],
  },
  { name: 'upgrade to compat 1.1', setup: v2, args: ['-o', 'compat=1.1', 'img'] },
  { name: 'upgrade with refcount_bits=8', setup: v2, args: ['-o', 'compat=1.1,refcount_bits=8', 'img'] },
  { name: 'refcount_bits=1', setup: v3, args: ['-o', 'refcount_bits=1', 'img'] },
  { name: 'refcount_bits=64', setup: v3, args: ['-o', 'refcount_bits=64', 'img'] },
  { name: 'refcount_bits=1 with a snapshot (a refcount of 2) is refused', setup: withSnapshot, args: ['-o', 'refcount_bits=1', 'img'] },
  { name: 'refcount_bits=2 with a snapshot', setup: withSnapshot, args: ['-o', 'refcount_bits=2', 'img'] },
  {
    name: 'downgrade from 2-bit refcounts with refcount_bits=16',
    setup: made(['-f', 'qcow2', '-o', 'refcount_bits=2', 'img', '10M'], ['write -P 1 0 1M']),
    args: ['-o', 'compat=0.10,refcount_bits=16', 'img'],
  },
  { name: 'compat=0.10 with refcount_bits=8 is refused', setup: v3, args: ['-o', 'compat=0.10,refcount_bits=8', 'img'] },
  { name: 'refcount_bits=3 is refused', setup: v3, args: ['-o', 'refcount_bits=3', 'img'] },
  { name: 'refcount_bits on a v2 image is refused', setup: v2, args: ['-o', 'refcount_bits=8', 'img'] },
  { name: 'lazy_refcounts=on', setup: v3, args: ['-o', 'lazy_refcounts=on', 'img'] },
  { name: 'lazy_refcounts on a v2 image is refused', setup: v2, args: ['-o', 'lazy_refcounts=on', 'img'] },
  { name: 'extended L2 blocks a downgrade', setup: made(['-f', 'qcow2', '-o', 'extended_l2=on', 'img', '10M']), args: ['-o', 'compat=0.10', 'img'] },
  { name: 'a data file blocks a downgrade', setup: made(['-f', 'qcow2', '-o', 'data_file=img.data', 'img', '10M']), args: ['-o', 'compat=0.10', 'img'], content: false },
  { name: 'data_file renames the external data file', setup: made(['-f', 'qcow2', '-o', 'data_file=img.data', 'img', '10M']), args: ['-o', 'data_file=other.data', 'img'], content: false },
  { name: 'data_file on an image without one is refused', setup: v3, args: ['-o', 'data_file=x.data', 'img'] },
  { name: 'data_file_raw=on is refused', setup: v3, args: ['-o', 'data_file_raw=on', 'img'] },
  { name: 'cluster_size is creation only', setup: v3, args: ['-o', 'cluster_size=4k', 'img'] },
  { name: 'compression_type is creation only', setup: v3, args: ['-o', 'compression_type=zstd', 'img'] },
  { name: 'an unknown option', setup: v3, args: ['-o', 'bogus=1', 'img'] },
  { name: 'the backing file cannot be amended', setup: v3, args: ['-o', 'backing_file=x', 'img'] },
  { name: 'an unknown compat level', setup: v3, args: ['-o', 'compat=2', 'img'] },
  { name: 'size grows', setup: v3, args: ['-o', 'size=20M', 'img'] },
  { name: 'size shrinks (no --shrink needed)', setup: v3, args: ['-o', 'size=5M', 'img'] },
  { name: 'raw images cannot be amended', setup: made(['-f', 'raw', 'img', '1M']), args: ['-f', 'raw', '-o', 'size=2M', 'img'] },
  { name: 'no -o', setup: v3, args: ['img'] },
];

describe('qcow amend against qemu-img amend', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('tools-amend-');
  });
  afterAll(() => s.cleanup());
  cases.forEach((c, i) => it(c.name, () => sideBySide(s, `a${i}`, c.setup, 'amend', c.args, { content: c.content })));

  it("-o help lists qemu-img's amend options for qcow2 (its encrypt.* ones aside: no encrypted images here)", () => {
    const dir = s.path('help');
    mkdirSync(dir);
    v3(dir);
    made(['-f', 'raw', 'plain', '1M'])(dir);
    for (const args of [['-o', 'help', 'img'], ['-o', 'compat=1.1,?', 'img'], ['-f', 'qcow2', '-o', 'help', 'missing'], ['-f', 'raw', '-o', 'help', 'plain']]) {
      const theirs = run('qemu-img', ['amend', ...args], { cwd: dir });
      const mine = qcow(['amend', ...args], { cwd: dir });
      expect(mine.status, args.join(' ')).toBe(theirs.status);
      expect(mine.stdout, args.join(' ')).toBe(theirs.stdout.replace(/^ {2}encrypt\..*\n/gm, ''));
      expect(mine.stderr, args.join(' ')).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:'));
    }
  });
});
