import { afterAll, beforeAll, describe, it } from 'vitest';
import { scratch, type Scratch } from '@q/test-support';
import { made, sideBySide } from './side-by-side.js';

const full10M = (options: string): ((dir: string) => void) => made(['-f', 'qcow2', '-o', options, 'img', '10M'], ['write -P 1 0 10M']);

// qcow resize against qemu-img resize on copies of the same image: same result, same refusals.
const cases: Array<{ name: string; setup: (dir: string) => void; args: string[]; fileSize?: boolean }> = [
  { name: 'shrink without --shrink is refused', setup: full10M('cluster_size=64k'), args: ['img', '5M'] },
  { name: 'a relative shrink without --shrink is refused', setup: full10M('cluster_size=64k'), args: ['img', '-1M'] },
  { name: 'shrink 64 KiB clusters', setup: full10M('cluster_size=64k'), args: ['--shrink', 'img', '5M'] },
  { name: 'shrink 512-byte clusters (L2 tables and refcount blocks freed)', setup: full10M('cluster_size=512'), args: ['--shrink', 'img', '3333k'] },
  { name: 'shrink 512-byte clusters, 64-bit refcounts', setup: full10M('cluster_size=512,refcount_bits=64'), args: ['--shrink', 'img', '1M'] },
  { name: 'shrink 1-bit refcounts', setup: full10M('cluster_size=512,refcount_bits=1'), args: ['--shrink', 'img', '1M'] },
  { name: 'shrink extended L2', setup: full10M('cluster_size=16k,extended_l2=on'), args: ['--shrink', 'img', '3M'] },
  { name: 'shrink compat 0.10', setup: full10M('compat=0.10'), args: ['--shrink', 'img', '3M'] },
  {
    name: 'shrink keeps the file where live clusters end',
    setup: made(['-f', 'qcow2', 'img', '10M'], ['write -P 1 9M 1M', 'write -P 2 0 64k']),
    args: ['--shrink', 'img', '5M'],
  },
  { name: 'shrink an empty image (QEMU allocates the straddling L2 table)', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['--shrink', 'img', '-1M'] },
  {
    name: 'shrink with an internal snapshot',
    setup: made(['-f', 'qcow2', '-o', 'cluster_size=4k', 'img', '10M'], ['write -P 1 0 10M'], [['snapshot', '-c', 's1', 'img']]),
    args: ['--shrink', 'img', '3M'],
  },
  { name: 'grow past the L1 table (64 KiB clusters, 100T)', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['img', '+100T'] },
  { name: 'grow past the L1 table (512-byte clusters)', setup: made(['-f', 'qcow2', '-o', 'cluster_size=512', 'img', '10M']), args: ['img', '2G'] },
  // The refcount table's growth places its new blocks differently from QEMU: same content, different length.
  { name: 'grow past the refcount table (512-byte clusters, 64-bit refcounts)', setup: full10M('cluster_size=512,refcount_bits=64'), args: ['img', '30G'], fileSize: false },
  { name: 'grow with preallocation=metadata', setup: made(['-f', 'qcow2', 'img', '1M'], ['write -P 1 0 64k']), args: ['--preallocation=metadata', 'img', '+1100k'] },
  // QEMU also moves the refcount table for falloc/full: one cluster more than ours.
  { name: 'grow with preallocation=full', setup: made(['-f', 'qcow2', 'img', '1M'], ['write -P 1 0 64k']), args: ['--preallocation=full', 'img', '+1100k'], fileSize: false },
  { name: 'preallocation when shrinking is refused', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['--preallocation=full', '--shrink', 'img', '-1M'] },
  { name: 'a bad preallocation mode', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['--preallocation=bogus', 'img', '+1M'] },
  { name: 'a size that is not a multiple of 512 (qcow2)', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['img', '11.1M'] },
  { name: 'a malformed size', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['img', '+1x'] },
  { name: 'a size that is not positive', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['--shrink', 'img', '-10M'] },
  { name: 'raw: shrink without --shrink', setup: made(['-f', 'raw', 'img', '10M']), args: ['-f', 'raw', 'img', '5M'] },
  { name: 'raw: shrink to a byte count', setup: made(['-f', 'raw', 'img', '10M']), args: ['-f', 'raw', '--shrink', 'img', '5000'] },
  { name: 'raw: grow with full preallocation and a fractional size', setup: made(['-f', 'raw', 'img', '10M']), args: ['-f', 'raw', '--preallocation=full', 'img', '11.1M'] },
  { name: 'raw: metadata preallocation is refused', setup: made(['-f', 'raw', 'img', '10M']), args: ['-f', 'raw', '--preallocation=metadata', 'img', '20M'] },
  { name: 'quiet', setup: made(['-f', 'qcow2', 'img', '10M']), args: ['-q', 'img', '+1M'] },
];

describe('qcow resize against qemu-img resize', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('tools-resize-');
  });
  afterAll(() => s.cleanup());
  cases.forEach((c, i) => it(c.name, () => sideBySide(s, `r${i}`, c.setup, 'resize', c.args, { fileSize: c.fileSize })));
});
