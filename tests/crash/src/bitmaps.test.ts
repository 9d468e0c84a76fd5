import { describe, it } from 'vitest';
import { expectCrashConsistent } from './harness.js';
import { qemuBase, randomWorkload, type SetupStep } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Persistent bitmaps (issue 14) under crashes: at every crash point qemu-img check finds no corruption, the
 * guest keeps what was flushed, and each maintained bitmap is either in_use (inconsistent) or holds right bits
 * (bitmap-check.ts): never a consistent bitmap that misses a write.
 */
const bitmaps: SetupStep[] = [
  { op: 'bitmap', name: 'fine' },
  { op: 'bitmap', name: 'coarse', args: ['-g', '512k'] },
  { op: 'bitmap', name: 'frozen', args: ['--disable'] },
];

describe('crash consistency: persistent bitmaps', () => {
  it('fresh bitmaps over data QEMU wrote: writes, zero writes, discards, then close', async () => {
    await expectCrashConsistent({
      name: 'bitmaps-fresh',
      base: qemuBase(4 * MiB, '', [{ op: 'write', offset: 0, length: MiB, pattern: 0x11 }, ...bitmaps]),
      bitmaps: ['fine', 'coarse'],
      workload: [...randomWorkload({ seed: 141, to: 4 * MiB, clusterSize: 64 * KiB, ops: 24 }), { op: 'close' }],
      maxChecks: 300,
    });
  });

  it('bitmaps with stored dirty bits (data clusters replaced and freed), 4 KiB clusters, lazy refcounts', async () => {
    await expectCrashConsistent({
      name: 'bitmaps-stored-lazy',
      base: qemuBase(8 * MiB, 'cluster_size=4096,lazy_refcounts=on', [
        { op: 'bitmap', name: 'fine', args: ['-g', '4k'] },
        { op: 'write', offset: 0, length: 2 * MiB, pattern: 0x21 },
        { op: 'write', offset: 6 * MiB, length: 64 * KiB, pattern: 0x22 },
      ]),
      lazy: true,
      bitmaps: ['fine'],
      workload: [...randomWorkload({ seed: 142, to: 8 * MiB, clusterSize: 4 * KiB, ops: 20, maxClusters: 8 }), { op: 'close' }],
      maxChecks: 150,
    });
  });

  it('resize with bitmaps: grow, write, shrink, write (bitmaps in_use while the size changes)', async () => {
    await expectCrashConsistent({
      name: 'bitmaps-resize',
      base: qemuBase(4 * MiB, '', [...bitmaps, { op: 'write', offset: 0, length: 256 * KiB, pattern: 0x31 }]),
      bitmaps: ['fine', 'coarse'],
      workload: [
        { op: 'write', offset: MiB, length: 64 * KiB, pattern: 0x32 },
        { op: 'flush' },
        { op: 'resize', size: 6 * MiB },
        { op: 'write', offset: 5 * MiB, length: 4 * KiB, pattern: 0x33 },
        { op: 'flush' },
        { op: 'resize', size: 3 * MiB },
        { op: 'write', offset: 2 * MiB, length: 4 * KiB, pattern: 0x34 },
        { op: 'close' },
      ],
      maxChecks: 150,
    });
  });
});
