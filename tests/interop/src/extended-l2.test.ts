import { afterAll, beforeAll, describe, it } from 'vitest';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { expectSameRaw, KiB, MiB, sz } from './oracle.js';

// Extended L2 entries (32 subclusters per cluster): partial subcluster writes, zero subclusters, discards,
// with and without a backing file under them (unallocated subclusters fall through to it).

interface L2Case {
  clusterSize: number;
  backing: 'none' | 'raw' | 'qcow2';
  compressed: boolean;
}

const cases: L2Case[] = [16 * KiB, 64 * KiB, 2 * MiB].flatMap((clusterSize) =>
  (['none', 'raw', 'qcow2'] as const).map((backing) => ({ clusterSize, backing, compressed: backing !== 'raw' })),
);

function writes(cs: number, compressed: boolean): string[] {
  const sc = cs / 32;
  const list = [
    `write -P 0x11 ${sz(sc)} ${sz(sc)}`, // one whole subcluster
    `write -P 0x12 ${3 * sc + 100} 50`, // inside one subcluster
    `write -P 0x13 ${sz(cs - sc)} ${sz(2 * sc)}`, // last subcluster of cluster 0, first of cluster 1
    `write -z ${sz(5 * sc)} ${sz(3 * sc)}`, // zero subclusters in an allocated cluster
    `write -z ${sz(2 * cs + 4 * sc)} ${sz(2 * sc)}`, // zero subclusters in an unallocated cluster
    `discard ${sz(sc)} ${sz(sc)}`, // discard one subcluster
    `write -P 0x14 ${sz(3 * cs)} ${sz(cs)}`,
    `write -z ${sz(3 * cs + 8 * sc)} ${sz(16 * sc)}`,
    `write -P 0x16 ${sz(5 * cs + 31 * sc)} 1`, // one byte in the last subcluster
  ];
  if (compressed) list.push(`write -c -P 0x15 ${sz(4 * cs)} ${sz(cs)}`, `write -P 0x17 ${sz(4 * cs + 2 * sc)} 512`);
  return list;
}

describe('extended L2 (subclusters)', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-extl2-');
  });
  afterAll(() => s.cleanup());

  for (const c of cases) {
    it(`cluster_size=${c.clusterSize} backing=${c.backing}${c.compressed ? ' +compressed cluster' : ''}`, async () => {
      const tag = `c${c.clusterSize}-${c.backing}`;
      const size = Math.max(4 * MiB, 6 * c.clusterSize);
      const img = s.path(`${tag}.qcow2`);
      const backingArgs: string[] = [];
      if (c.backing !== 'none') {
        const base = s.path(`${tag}-base.${c.backing}`);
        qemuImg(['create', '-q', '-f', c.backing, base, String(size)]);
        qemuIo(base, [`write -P 0xee 0 ${size}`], { format: c.backing });
        backingArgs.push('-b', base, '-F', c.backing);
      }
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', `extended_l2=on,cluster_size=${c.clusterSize}`, ...backingArgs, img, String(size)]);
      qemuIo(img, writes(c.clusterSize, c.compressed));
      await expectSameRaw(s, img);
    });
  }

  it('subclusters with the zero flag over a backing file, then rewritten in place', async () => {
    const size = 4 * MiB;
    const base = s.path('rw-base.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', base, String(size)]);
    qemuIo(base, [`write -P 0xaa 0 ${size}`]);
    const img = s.path('rw.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=32k', '-b', base, '-F', 'qcow2', img]);
    qemuIo(img, ['write -z 0 64k', 'write -P 0x01 1k 1k', 'write -P 0x02 40k 3k', 'discard 48k 8k', 'write -z 100k 1k']);
    await expectSameRaw(s, img);
  });
});
