import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent } from './harness.js';
import { qemuBase, randomWorkload, type SetupStep } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * `qcow amend -o compat=0.10` under the crash harness (judged as lazy-refcount scenarios: the expansion runs under
 * the dirty bit, as snapshot operations do, see snapshots.test.ts): every zero cluster of the active state and of each internal
 * snapshot becomes unallocated, a new cluster of zeros or zeros written into its own cluster, in place in tables
 * that trees share, and only then does the header say v2. Every crash image must pass qemu-img check and read as
 * the guest and each snapshot did before (the snapshots made by QEMU are read at every crash point). The bases are
 * QEMU's, with the zero clusters it makes: zeros written over data a snapshot keeps (where qemu-img 7.2's own
 * downgrade zeroes the snapshot's data too), preallocated and plain zero clusters, tables shared between trees.
 */
const ZERO_BACKING = `/dev/shm/qcow-crash-downgrade-zeros-${process.pid}.raw`;

/** Data, zeros (kept allocated and not), a snapshot, zeros over what the snapshot keeps, another snapshot. */
function setup(clusterSize: number): SetupStep[] {
  const c = clusterSize;
  return [
    { op: 'write', offset: 0, length: 8 * c, pattern: 0x11 },
    { op: 'zero', offset: 2 * c, length: 2 * c },
    { op: 'zero', offset: 12 * c, length: 3 * c, unmap: true },
    { op: 'snapshot', name: 's1' },
    { op: 'zero', offset: 5 * c, length: 2 * c },
    { op: 'write', offset: 20 * c, length: 4 * c, pattern: 0x22 },
    { op: 'zero', offset: 21 * c, length: c },
    { op: 'zero', offset: 40 * c, length: 2 * c },
    { op: 'snapshot', name: 's2' },
    { op: 'zero', offset: 0, length: c, unmap: true },
    { op: 'write', offset: 60 * c, length: 2 * c, pattern: 0x33 },
  ];
}

function workload(seed: number, size: number, clusterSize: number): GuestOp[] {
  return [
    ...randomWorkload({ seed, to: size, clusterSize, ops: 6, maxClusters: 3, firstPattern: 0x40 }),
    { op: 'zero', offset: 30 * clusterSize, length: 2 * clusterSize },
    { op: 'downgrade' },
    ...randomWorkload({ seed: seed + 1, to: size, clusterSize, ops: 4, maxClusters: 2, firstPattern: 0x60 }),
    { op: 'flush' },
  ];
}

describe('crash consistency: downgrade to compat 0.10 with internal snapshots', () => {
  beforeAll(() => {
    const fd = openSync(ZERO_BACKING, 'w');
    ftruncateSync(fd, 8 * MiB);
    closeSync(fd);
  });
  afterAll(() => rmSync(ZERO_BACKING, { force: true }));

  it('64 KiB clusters, no backing file (zero clusters become unallocated)', async () => {
    await expectCrashConsistent({
      name: 'downgrade-64k',
      base: qemuBase(8 * MiB, 'cluster_size=65536', setup(64 * KiB)),
      workload: workload(71, 8 * MiB, 64 * KiB),
      lazy: true,
      maxChecks: 500,
    });
  });

  it('4 KiB clusters over a backing file (zero clusters get clusters of zeros, shared ones counted per tree)', async () => {
    await expectCrashConsistent({
      name: 'downgrade-4k-backed',
      base: qemuBase(1 * MiB, `cluster_size=4096,backing_file=${ZERO_BACKING},backing_fmt=raw`, setup(4 * KiB)),
      backingSize: 8 * MiB,
      workload: workload(73, 1 * MiB, 4 * KiB),
      lazy: true,
      maxChecks: 500,
    });
  });
});
