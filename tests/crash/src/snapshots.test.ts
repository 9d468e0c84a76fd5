import { describe, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent } from './harness.js';
import { createdBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Snapshot create, apply and delete under the crash harness. Each runs under the dirty bit (refcounts and COPIED
 * flags cannot change in one write), so the scenarios are judged as lazy-refcount ones: while the bit is set,
 * stale refcounts and COPIED flags are allowed and `qemu-img check -r all` must leave the image clean; once it is
 * clear, nothing may be wrong. The guest must read the state the last completed operation left.
 */
function snapshotWorkload(seed: number, to: number, clusterSize: number): GuestOp[] {
  const part = (n: number, pattern: number): GuestOp[] => randomWorkload({ seed: seed + n, to, clusterSize, ops: 8, maxClusters: 3, firstPattern: pattern });
  return [
    ...part(0, 0x10),
    { op: 'snapshot', action: 'create', name: 's1' },
    ...part(1, 0x30),
    { op: 'snapshot', action: 'create', name: 's2' },
    ...part(2, 0x50),
    { op: 'snapshot', action: 'delete', name: 's1' },
    ...part(3, 0x70),
    { op: 'snapshot', action: 'apply', name: 's2' },
    ...part(4, 0x90),
    { op: 'flush' },
    { op: 'snapshot', action: 'delete', name: 's2' },
  ];
}

describe('crash consistency: internal snapshots', () => {
  it('64 KiB clusters: create, write, create, delete, apply, delete', async () => {
    await expectCrashConsistent({
      name: 'snapshots-64k',
      base: await createdBase(4 * MiB),
      lazy: true,
      workload: snapshotWorkload(41, 4 * MiB, 64 * KiB),
    });
  });

  it('4 KiB clusters, 8-bit refcounts', async () => {
    await expectCrashConsistent({
      name: 'snapshots-4k-r8',
      base: await createdBase(2 * MiB, { clusterBits: 12, refcountOrder: 3 }),
      lazy: true,
      workload: snapshotWorkload(51, 2 * MiB, 4 * KiB),
    });
  });
});
