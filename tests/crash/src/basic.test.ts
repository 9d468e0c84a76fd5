import { describe, it } from 'vitest';
import { expectCrashConsistent } from './harness.js';
import { createdBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Small mixed workloads on plain images: every crash point of the recorded run, each under several choices of
 * which unflushed writes persisted (none, all, random subsets, random subsets in a different order).
 */
describe('crash consistency: plain images', () => {
  it('v3, 64 KiB clusters: writes, zero writes, discards', async () => {
    await expectCrashConsistent({
      name: 'v3-64k',
      base: await createdBase(4 * MiB),
      workload: randomWorkload({ seed: 1, to: 4 * MiB, clusterSize: 64 * KiB, ops: 40 }),
    });
  });

  it('v2 (compat 0.10, no zero flag), 64 KiB clusters', async () => {
    await expectCrashConsistent({
      name: 'v2-64k',
      base: await createdBase(4 * MiB, { version: 2 }),
      workload: randomWorkload({ seed: 2, to: 4 * MiB, clusterSize: 64 * KiB, ops: 40 }),
    });
  });

  it('4 KiB clusters, 1-bit refcounts: many L2 tables and refcount blocks', async () => {
    await expectCrashConsistent({
      name: '4k-refcount1',
      base: await createdBase(16 * MiB, { clusterBits: 12, refcountOrder: 0 }),
      workload: randomWorkload({ seed: 3, to: 16 * MiB, clusterSize: 4 * KiB, ops: 50, maxClusters: 6 }),
    });
  });

  it('512-byte clusters, 8-bit refcounts: a new refcount block every 256 KiB', async () => {
    await expectCrashConsistent({
      name: '512-refcount8',
      base: await createdBase(2 * MiB, { clusterBits: 9, refcountOrder: 3 }),
      workload: randomWorkload({ seed: 4, to: 2 * MiB, clusterSize: 512, ops: 60, maxClusters: 24 }),
    });
  });
});
