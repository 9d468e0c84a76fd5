import { describe, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent } from './harness.js';
import { createdBase, qemuBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Writes of many clusters go out as one data write per contiguous host run: whole clusters needing new host
 * clusters are allocated as one run, and their L2 entries change together once the data has landed. A crash
 * anywhere in such a write (between the refcounts, the data and the tables of a run) must leave a clean image
 * that keeps every flushed write.
 */
describe('crash consistency: large multi-cluster writes', () => {
  it('64 KiB clusters: runs over shared, compressed, zero and owned clusters, with partial heads and tails', async () => {
    // Made by QEMU: data, compressed clusters, zero clusters, a snapshot sharing all of it, then some clusters
    // rewritten (owned again). The workload's runs replace each kind, and discards leave holes runs must fill.
    const base = qemuBase(4 * MiB, '', [
      { op: 'write', offset: 0, length: 1536 * KiB, pattern: 0x11 },
      { op: 'write', offset: 2 * MiB, length: 64 * KiB, pattern: 0x12, compressed: true },
      { op: 'write', offset: 2 * MiB + 64 * KiB, length: 64 * KiB, pattern: 0x13, compressed: true },
      { op: 'zero', offset: 3 * MiB, length: 256 * KiB },
      { op: 'snapshot', name: 's1' },
      { op: 'write', offset: 512 * KiB, length: 256 * KiB, pattern: 0x14 },
    ]);
    const workload: GuestOp[] = [
      { op: 'write', offset: 0, length: MiB, pattern: 0x21 },
      { op: 'write', offset: MiB + 32 * KiB, length: MiB + 96 * KiB, pattern: 0x22 },
      { op: 'flush' },
      { op: 'discard', offset: 256 * KiB, length: 256 * KiB },
      { op: 'write', offset: 2 * MiB + 17 * 512, length: 1536 * KiB, pattern: 0x23 },
      { op: 'flush' },
      { op: 'write', offset: 128 * KiB, length: 768 * KiB, pattern: 0x24 },
      { op: 'write', offset: 0, length: 4 * MiB, pattern: 0x25 },
      { op: 'flush' },
      { op: 'write', offset: 64 * KiB - 512, length: 2 * MiB, pattern: 0x26 },
      { op: 'close' },
    ];
    // Every crash point under every policy (about 150 images); QEMU's own reader on a dozen of them (each is a
    // qemu-img convert), which keeps the scenario near a minute on a busy machine.
    await expectCrashConsistent({ name: 'batched-64k', base, workload, maxChecks: 160, qemuReads: 12 });
  });

  it('512-byte clusters, 8-bit refcounts: runs crossing L2 tables and ranges that need new refcount blocks', async () => {
    // An L2 table maps 32 KiB and a refcount block counts 128 KiB: runs of up to 160 KiB cross both.
    await expectCrashConsistent({
      name: 'batched-512-r8',
      base: await createdBase(2 * MiB, { clusterBits: 9, refcountOrder: 3 }),
      workload: randomWorkload({ seed: 61, to: 2 * MiB, clusterSize: 512, ops: 16, maxClusters: 320, zeroShare: 0.1, discardShare: 0.15 }),
      allPointsUpTo: 300,
      stride: 11,
      maxChecks: 160,
    });
  });

  it('extended L2: runs over partly allocated and zero subclusters', async () => {
    await expectCrashConsistent({
      name: 'batched-extl2',
      base: await createdBase(4 * MiB, { extendedL2: true }),
      workload: randomWorkload({ seed: 62, to: 4 * MiB, clusterSize: 64 * KiB, ops: 24, maxClusters: 12, align: 2 * KiB }),
      maxChecks: 90,
      qemuReads: 20,
    });
  });

  // Lazy refcounts: nothing in the refcount path syncs the runs' data before the L2 tables naming it, so the write
  // path's own sync before a table write-back (WritePath.syncBeforeTableWriteBack) and at flush must.
  it('extended L2, lazy refcounts, over data QEMU wrote', async () => {
    await expectCrashConsistent({
      name: 'batched-extl2-lazy',
      base: qemuBase(4 * MiB, 'extended_l2=on,lazy_refcounts=on', [{ op: 'write', offset: 0, length: 2 * MiB, pattern: 0x11 }]),
      lazy: true,
      workload: randomWorkload({ seed: 62, to: 4 * MiB, clusterSize: 64 * KiB, ops: 24, maxClusters: 12, align: 2 * KiB, firstPattern: 0x40 }),
      maxChecks: 120,
      qemuReads: 20,
    });
  });
});
