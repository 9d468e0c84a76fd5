import { afterAll, beforeAll, describe, it } from 'vitest';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { expectSameRaw, KiB, MiB, sz } from './oracle.js';

// Versions, cluster sizes and refcount widths: every image qemu-img makes must read byte-identical.

interface FormatCase {
  compat: '0.10' | '1.1';
  clusterSize: number;
  refcountBits: number;
  snapshot: boolean;
}

const clusterSizes = [512, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 512 * KiB, 2 * MiB];
const cases: FormatCase[] = [
  ...(['0.10', '1.1'] as const).flatMap((compat) =>
    clusterSizes.map((clusterSize) => ({ compat, clusterSize, refcountBits: 16, snapshot: false })),
  ),
  ...[1, 2, 4, 8, 16, 32, 64].flatMap((refcountBits) =>
    [512, 64 * KiB].map((clusterSize) => ({ compat: '1.1' as const, clusterSize, refcountBits, snapshot: refcountBits > 1 })),
  ),
];

/** A few writes that touch partial clusters, straddle cluster boundaries, overwrite, zero and discard. */
function writes(cs: number, compat: string): string[] {
  const list = [
    'write -P 0x11 0 3k',
    `write -P 0x22 ${cs * 3 - 100} 300`,
    `write -P 0x33 ${MiB + 512} 64k`,
    'write -P 0x55 512 1k',
    `write -P 0x44 ${sz(4 * cs)} ${sz(cs)}`,
    `discard ${sz(4 * cs)} ${sz(cs)}`,
    `write -P 0x66 ${sz(5 * cs)} ${sz(cs)}`,
  ];
  if (compat === '1.1') list.push(`write -z ${sz(5 * cs)} ${sz(cs)}`, `write -z ${2 * MiB + 4096} 8k`);
  return list;
}

describe('format matrix: version x cluster size x refcount width', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-format-');
  });
  afterAll(() => s.cleanup());

  for (const c of cases) {
    const name = `compat=${c.compat} cluster_size=${c.clusterSize} refcount_bits=${c.refcountBits}${c.snapshot ? ' +snapshot' : ''}`;
    it(name, async () => {
      const img = s.path(`v${c.compat}-c${c.clusterSize}-r${c.refcountBits}.qcow2`);
      const size = Math.max(4 * MiB, 6 * c.clusterSize);
      qemuImg([
        'create', '-q', '-f', 'qcow2',
        '-o', `compat=${c.compat},cluster_size=${c.clusterSize},refcount_bits=${c.refcountBits}`,
        img, String(size),
      ]);
      qemuIo(img, writes(c.clusterSize, c.compat));
      if (c.snapshot) {
        // Shared clusters (refcount 2), then copy-on-write over some of them.
        qemuImg(['snapshot', '-c', 'snap1', img]);
        qemuIo(img, ['write -P 0x77 1k 2k', `write -P 0x88 ${MiB} 8k`]);
      }
      await expectSameRaw(s, img);
    });
  }
});
