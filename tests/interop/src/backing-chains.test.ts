import { mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, readHeaderArea, scratch, HeaderExtensionType, type Scratch } from '@q/test-support';
import { buildChain, type Layer } from './chain-builder.js';
import { expectSameRaw, KiB, MiB } from './oracle.js';

// Backing chains: several depths, raw and qcow2 layers of different cluster sizes, relative and absolute
// backing names, backing files shorter (or longer) than their overlays, backing files without a format.

const q = (size: number, opts: string, extra: Partial<Layer> = {}): Layer => ({ format: 'qcow2', size, opts, ...extra });
const raw = (size: number, extra: Partial<Layer> = {}): Layer => ({ format: 'raw', size, ...extra });

interface ChainCase {
  name: string;
  layers: Layer[];
}

const chains: ChainCase[] = [
  { name: 'depth 2: raw <- qcow2 64k', layers: [raw(4 * MiB), q(4 * MiB, 'cluster_size=64k')] },
  { name: 'depth 3: raw <- qcow2 4k <- qcow2 64k', layers: [raw(4 * MiB), q(4 * MiB, 'cluster_size=4k'), q(4 * MiB, 'cluster_size=64k')] },
  {
    name: 'depth 4: qcow2 512 <- qcow2 2M <- qcow2 16k extended_l2 <- qcow2 64k v2',
    layers: [
      q(4 * MiB, 'cluster_size=512'),
      q(4 * MiB, 'cluster_size=2M'),
      q(4 * MiB, 'cluster_size=16k,extended_l2=on'),
      q(4 * MiB, 'cluster_size=64k,compat=0.10'),
    ],
  },
  {
    name: 'depth 5: raw <- 64k <- 4k <- 1k <- 128k, mixed directories and name styles',
    layers: [
      raw(4 * MiB, { dir: 'base' }),
      q(4 * MiB, 'cluster_size=64k', { dir: 'mid/a' }),
      q(4 * MiB, 'cluster_size=4k', { dir: 'mid/b', backingName: 'absolute' }),
      q(4 * MiB, 'cluster_size=1k', { dir: 'mid/b' }),
      q(4 * MiB, 'cluster_size=128k', { dir: 'top' }),
    ],
  },
  { name: 'all absolute names, depth 3', layers: [raw(2 * MiB), q(2 * MiB, 'cluster_size=4k', { backingName: 'absolute' }), q(2 * MiB, 'cluster_size=64k', { backingName: 'absolute' })] },
  {
    name: 'shorter backing files: raw 1M <- qcow2 2M <- qcow2 4M (zeros past each end)',
    layers: [raw(1 * MiB), q(2 * MiB, 'cluster_size=64k'), q(4 * MiB, 'cluster_size=4k')],
  },
  {
    name: 'shorter middle layer hides a longer base: raw 4M <- qcow2 1M <- qcow2 4M',
    layers: [raw(4 * MiB, { writes: [`write -P 0x5e 0 ${4 * MiB}`] }), q(1 * MiB, 'cluster_size=64k'), q(4 * MiB, 'cluster_size=64k')],
  },
  {
    name: 'backing size not cluster aligned: raw 1M+5k <- qcow2 2M',
    layers: [raw(MiB + 5 * KiB, { writes: [`write -P 0x3c 0 ${MiB + 5 * KiB}`] }), q(2 * MiB, 'cluster_size=64k', { writes: ['write -P 0x3d 4k 4k'] })],
  },
  { name: 'raw backing without a recorded format', layers: [raw(2 * MiB), q(2 * MiB, 'cluster_size=64k', { noBackingFormat: true })] },
  {
    name: 'qcow2 backing without a recorded format, depth 3',
    layers: [q(2 * MiB, 'cluster_size=4k'), q(2 * MiB, 'cluster_size=64k', { noBackingFormat: true }), q(2 * MiB, 'cluster_size=64k', { noBackingFormat: true })],
  },
  {
    name: 'compressed layers: zstd 64k <- zlib 4k <- extended L2 32k',
    layers: [
      q(2 * MiB, 'cluster_size=64k,compression_type=zstd', { writes: ['write -c -P 0x71 0 64k', 'write -c -P 0x72 1M 64k', 'write -P 0x73 512k 64k'] }),
      q(2 * MiB, 'cluster_size=4k', { writes: ['write -c -P 0x74 4k 4k', 'write -c -P 0x75 1M+8k 4k'.replace('1M+8k', '1056768'), 'write -z 1M 4k'] }),
      q(2 * MiB, 'cluster_size=32k,extended_l2=on', { writes: ['write -P 0x76 1k 1k', 'write -z 1040k 2k'] }),
    ],
  },
  {
    name: 'v2 overlays over raw: raw <- v2 4k <- v2 64k',
    layers: [raw(3 * MiB), q(3 * MiB, 'compat=0.10,cluster_size=4k'), q(3 * MiB, 'compat=0.10,cluster_size=64k')],
  },
];

describe('backing chains', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-chain-');
    mkdirSync(s.path('elsewhere'));
  });
  afterAll(() => s.cleanup());

  chains.forEach((c, i) => {
    it(`${c.name} (absolute image path, qcow run from /)`, async () => {
      const paths = buildChain(s, `chain${i}a`, c.layers);
      await expectSameRaw(s, paths.at(-1)!, { qcowCwd: '/' });
    });

    it(`${c.name} (relative image path from another directory)`, async () => {
      const paths = buildChain(s, `chain${i}b`, c.layers);
      const cwd = s.path('elsewhere');
      const top = relative(cwd, paths.at(-1)!);
      await expectSameRaw(s, top, { qcowCwd: cwd, qemuCwd: cwd });
    });
  });

  it('a backing name without a format really has no backing format extension', () => {
    const paths = buildChain(s, 'nofmt', [raw(MiB), q(MiB, 'cluster_size=64k', { noBackingFormat: true })]);
    const area = readHeaderArea(paths[1]!);
    expect(area.backingName?.toString()).toBe('nofmt-0.raw');
    expect(area.extensions.map((e) => e.type)).not.toContain(HeaderExtensionType.backingFormat);
    const info = JSON.parse(qemuImg(['info', '--output=json', paths[1]!])) as Record<string, unknown>;
    expect(info['backing-filename-format']).toBeUndefined();
  });

  it('each layer of a deep chain reads like qemu-img (every prefix of the chain)', async () => {
    const paths = buildChain(s, 'prefix', chains[3]!.layers);
    for (const p of paths) await expectSameRaw(s, p);
  });
});
