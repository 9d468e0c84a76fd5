import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { ioLines, qcowIo } from './harness.js';

/**
 * Zero writes and discards of long ranges (many L2 tables at once, entry-range-change.ts) and of partial clusters at
 * their ends, run by qemu-io on one copy and `qcow io` on another. Where QEMU frees nothing it would reuse, the
 * files must be the same bytes (ours may end sooner: closing cuts free clusters off the end, which QEMU leaves as
 * zeros). Where clusters are freed and more are allocated in the same session QEMU reuses them at once and we
 * only after the next flush (write-path.ts: a crash may leak, never corrupt), so those files are held to the same
 * map (every extent's kind, without host offsets), the same guest bytes and a clean check instead.
 */
interface ZeroCase {
  name: string;
  create: string;
  size: string;
  /** qemu-io commands that fill a qcow2 backing file first (the image then has it as backing file). */
  backing?: string[];
  prepare: string[];
  /** An internal snapshot taken after `prepare`: its tables and clusters are shared. */
  snapshot?: boolean;
  commands: string[];
  identical: boolean;
}

const data = ['write -P 1 0 1M', 'write -P 2 700M 3M', 'write -P 3 5G 64k', 'write -P 4 6G 64k', 'write -P 5 8191M 1M'];

const cases: ZeroCase[] = [
  { name: 'zero flags over 64 GiB of an empty image', create: '', size: '64G', prepare: [], commands: ['write -z -n 0 64G'], identical: true },
  { name: 'discards of an empty image (its tables are made all the same)', create: '', size: '64G', prepare: [], commands: ['discard 1M 2000M', 'discard 40G 1G'], identical: true },
  { name: 'zero flags over data, clusters kept', create: '', size: '8G', prepare: data, commands: ['write -z -n 0 8G'], identical: true },
  { name: 'zero flags over data shared with a snapshot', create: '', size: '8G', prepare: data, snapshot: true, commands: ['write -z -n 0 8G'], identical: true },
  { name: 'zero flags hide a backing file', create: '', size: '8G', backing: ['write -P 7 0 64M', 'write -P 8 4G 64M'], prepare: data, commands: ['write -z -n 0 8G'], identical: true },
  { name: '4 KiB clusters: batches of tables end inside the range', create: 'cluster_size=4096', size: '8G', prepare: data, commands: ['write -z -n 0 5G'], identical: true },
  {
    name: 'partial clusters at the ends: flagged when the rest reads as zeros, written otherwise',
    create: '',
    size: '8G',
    backing: ['write -P 7 512M 1M'],
    prepare: data,
    commands: ['write -z 4k 100k', 'write -z 2000M 1000000', 'write -z 513M 4k', 'write -z 1028k 4k', 'write -z 6G 4k'],
    identical: true,
  },
  { name: 'write -z -n (no fallback) of partial clusters whose rest reads as zeros', create: '', size: '8G', prepare: data, commands: ['write -z -n 2147487744 100k'], identical: true },
  { name: 'extended L2: partial subclusters at the ends', create: 'extended_l2=on', size: '8G', prepare: data, commands: ['write -z 12345 2000M', 'write -z 3G 1000'], identical: true },
  { name: 'v2 without a backing file: nothing to unallocate, partial clusters left when they read as zeros', create: 'compat=0.10', size: '8G', prepare: data, commands: ['write -z 1G 2000M', 'write -z 3G 4k', 'write -z 5G 4k'], identical: true },
  { name: 'v2 without a backing file: data clusters unallocated', create: 'compat=0.10', size: '8G', prepare: data, commands: ['write -z 4k 2000M', 'write -z -u 5G 1G'], identical: false },
  { name: 'v2 over a backing file: zeros written', create: 'compat=0.10', size: '16M', backing: ['write -P 7 0 4M'], prepare: [], commands: ['write -z 4k 4k', 'write -z 2M 64k', 'write -z 6M 64k'], identical: true },
  { name: 'zero with unmap, freeing clusters', create: '', size: '8G', prepare: data, commands: ['write -z -n -u 0 8G'], identical: false },
  { name: 'zero with unmap of data shared with a snapshot', create: '', size: '8G', prepare: data, snapshot: true, commands: ['write -z -n -u 0 8G'], identical: false },
  { name: 'discards and zero writes with unmap, unaligned', create: '', size: '8G', prepare: data, commands: ['discard 4k 2000M', 'write -z -u 2500M 1000M', 'discard 5000M 1500M'], identical: false },
  { name: 'extended L2: unmap and discard', create: 'extended_l2=on', size: '8G', prepare: data, commands: ['write -z -n -u 0 8G', 'discard 12345 2000M'], identical: false },
  { name: 'overlay: discards show zeros, not the backing file', create: '', size: '8G', backing: ['write -P 7 512M 64M', 'write -P 8 1536M 64M'], prepare: data, commands: ['discard 0 2000M', 'write -z -u 3G 1000M'], identical: false },
];

describe('zero writes and discards of long ranges, against qemu-io', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('qcow-zero-ranges-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, index) => {
    it(c.name, () => {
      const theirs = s.path(`${index}-qemu.qcow2`);
      const mine = s.path(`${index}-qcow.qcow2`);
      const backingArgs: string[] = [];
      if (c.backing !== undefined) {
        const base = s.path(`${index}-base.qcow2`);
        qemuImg(['create', '-q', '-f', 'qcow2', base, c.size]);
        qemuIo(base, c.backing);
        backingArgs.push('-b', base, '-F', 'qcow2');
      }
      qemuImg(['create', '-q', '-f', 'qcow2', ...(c.create === '' ? [] : ['-o', c.create]), ...backingArgs, theirs, c.size]);
      if (c.prepare.length > 0) qemuIo(theirs, c.prepare);
      if (c.snapshot === true) qemuImg(['snapshot', '-c', 'before', theirs]);
      run('cp', [theirs, mine]);

      const out = qemuIo(theirs, c.commands);
      expect(out, 'qemu-io refused a command: the case itself is wrong').not.toMatch(/failed|error/i);
      const mineOut = qcowIo(mine, c.commands);
      expect(ioLines(mineOut)).toEqual(ioLines(out));

      const check = run('qemu-img', ['check', '-f', 'qcow2', mine]);
      expect(check.status, `qemu-img check:\n${check.stdout}${check.stderr}`).toBe(0);
      const cmp = run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', theirs, mine]);
      expect(cmp.status, `qemu-img compare: ${cmp.stdout}${cmp.stderr}`).toBe(0);
      expect(mapWithoutOffsets(mine)).toEqual(mapWithoutOffsets(theirs));
      if (c.identical) expectSameBytes(mine, theirs);
    });
  });
});

/** qemu-img map's extents without host offsets (where the clusters lie may differ; what maps where may not). */
function mapWithoutOffsets(image: string): unknown[] {
  const extents = JSON.parse(qemuImg(['map', '--output=json', image])) as Array<Record<string, unknown>>;
  return extents.map(({ offset: _offset, ...rest }) => rest);
}

/** The same bytes, except that QEMU's file may go on past ours with zeros (free clusters left at its end). */
function expectSameBytes(mine: string, theirs: string): void {
  const a = readFileSync(mine);
  const b = readFileSync(theirs);
  expect(a.length, 'our file is longer than QEMU\'s').toBeLessThanOrEqual(b.length);
  const first = a.findIndex((byte, i) => byte !== b[i]);
  expect(first, `the files differ first at byte ${first}`).toBe(-1);
  expect(b.subarray(a.length).every((byte) => byte === 0), 'QEMU\'s file goes on with non-zero bytes').toBe(true);
}
