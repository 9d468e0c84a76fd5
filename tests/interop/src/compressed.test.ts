import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { expectSameRaw, KiB, MiB, sz, writeMixedRaw } from './oracle.js';

// Compressed clusters, zlib and zstd, at several cluster sizes: as `qemu-img convert -c` writes them, after
// qemu-io overwrote, zeroed or discarded some, and written one by one with `write -c`.

interface CompressedCase {
  type: 'zlib' | 'zstd';
  compat: '0.10' | '1.1';
  clusterSize: number;
}

const cases: CompressedCase[] = [
  ...(['zlib', 'zstd'] as const).flatMap((type) =>
    [4 * KiB, 64 * KiB, 2 * MiB].map((clusterSize) => ({ type, compat: '1.1' as const, clusterSize })),
  ),
  { type: 'zlib', compat: '0.10', clusterSize: 64 * KiB },
  { type: 'zlib', compat: '1.1', clusterSize: 512 },
  { type: 'zstd', compat: '1.1', clusterSize: 512 },
];

function compressedClusters(img: string): number {
  const check = JSON.parse(qemuImg(['check', '--output=json', img])) as { 'compressed-clusters'?: number };
  return check['compressed-clusters'] ?? 0;
}

function options(c: CompressedCase): string {
  const type = c.compat === '1.1' ? `,compression_type=${c.type}` : '';
  return `compat=${c.compat},cluster_size=${c.clusterSize}${type}`;
}

describe('compressed clusters', () => {
  let s: Scratch;
  let small: string;
  let large: string;
  // The last cluster is partial for big clusters; 2 MiB clusters get a larger source so 4 clusters fit.
  const sourceFor = (cs: number): string => (cs >= 2 * MiB ? large : small);
  beforeAll(() => {
    s = scratch('interop-compressed-');
    small = writeMixedRaw(s.path('mixed-small.raw'), 4 * MiB + 8 * KiB, 7);
    large = writeMixedRaw(s.path('mixed-large.raw'), 8 * MiB + 8 * KiB, 8);
  });
  afterAll(() => s.cleanup());

  for (const c of cases) {
    const name = `${c.type} compat=${c.compat} cluster_size=${c.clusterSize}`;

    it(`${name}: qemu-img convert -c`, async () => {
      const img = s.path(`conv-${c.type}-${c.compat}-${c.clusterSize}.qcow2`);
      qemuImg(['convert', '-c', '-O', 'qcow2', '-o', options(c), sourceFor(c.clusterSize), img]);
      expect(compressedClusters(img)).toBeGreaterThan(0);
      await expectSameRaw(s, img);
    });

    it(`${name}: convert -c, then overwritten, zeroed and discarded`, async () => {
      const img = s.path(`mod-${c.type}-${c.compat}-${c.clusterSize}.qcow2`);
      qemuImg(['convert', '-c', '-O', 'qcow2', '-o', options(c), sourceFor(c.clusterSize), img]);
      const cs = c.clusterSize;
      const commands = [
        `write -P 0x71 ${cs / 2 - 100} 200`, // copy-on-write out of a compressed cluster
        `write -P 0x72 ${sz(2 * cs)} ${sz(cs)}`, // whole cluster replaced
        `discard ${sz(3 * cs)} ${sz(cs)}`,
        `write -P 0x73 ${sz(MiB + 3 * KiB)} 10k`,
      ];
      if (c.compat === '1.1') commands.push(`write -z ${sz(cs)} ${sz(cs)}`, `write -z ${sz(3 * MiB)} 4k`);
      qemuIo(img, commands);
      expect(compressedClusters(img)).toBeGreaterThan(0);
      await expectSameRaw(s, img);
    });

    it(`${name}: qemu-io write -c into an empty image, some clusters rewritten`, async () => {
      const img = s.path(`wc-${c.type}-${c.compat}-${c.clusterSize}.qcow2`);
      const cs = c.clusterSize;
      const source = sourceFor(cs);
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', options(c), img, String(Math.max(4 * MiB, 4 * cs))]);
      qemuIo(img, [
        `write -c -P 0x41 0 ${sz(cs)}`,
        `write -c -s ${source} ${sz(cs)} ${sz(cs)}`,
        `write -c -P 0x00 ${sz(2 * cs)} ${sz(cs)}`,
        `write -c -s ${source} ${sz(3 * cs)} ${sz(cs)}`,
        `write -P 0x42 ${sz(3 * cs + cs / 4)} ${cs / 8}`,
      ]);
      expect(compressedClusters(img)).toBeGreaterThan(0);
      await expectSameRaw(s, img);
    });
  }
});
