import { describe, expect, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent, headerFields } from './harness.js';
import { createdBase, qemuBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * Table growth: a crash anywhere in the sequence "write the new table, sync, switch the header, sync, free the old"
 * must leave either the old or the new table in force, never a header naming a table that is not there.
 */
describe('crash consistency: refcount table growth', () => {
  // 512-byte clusters with 64-bit refcounts: one refcount block covers 64 clusters and the one-cluster table 64
  // blocks, so the table is full at 2 MiB of host space. QEMU fills the image to just below that; the recorded
  // workload crosses it.
  it('512-byte clusters, 64-bit refcounts: the table grows mid-workload', async () => {
    const base = qemuBase(8 * MiB, 'cluster_size=512,refcount_bits=64', [{ op: 'write', offset: 0, length: 1850 * KiB, pattern: 0x11 }]);
    const before = headerFields(base.bytes);
    const result = await expectCrashConsistent({
      name: 'reftable-growth-512-r64',
      base,
      // Long logs of big images: every point around flushes and header writes, one in 17 elsewhere.
      allPointsUpTo: 200,
      stride: 17,
      // Each check reads an 8 MiB image: about 1 s on a busy machine.
      maxChecks: 300,
      workload: randomWorkload({ seed: 21, from: 2 * MiB, to: 8 * MiB, clusterSize: 512, ops: 30, maxClusters: 40, zeroShare: 0.1, discardShare: 0.05 }),
    });
    const after = headerFields(result.final);
    expect(before.refcountTableClusters).toBe(1);
    expect(after.refcountTableClusters).toBeGreaterThan(1);
    expect(after.refcountTableOffset).not.toBe(before.refcountTableOffset);
  });

  // 512-byte clusters with 16-bit refcounts: the first table covers 8 MiB of host space.
  it('512-byte clusters, 16-bit refcounts: the table grows mid-workload', async () => {
    const base = qemuBase(16 * MiB, 'cluster_size=512', [{ op: 'write', offset: 0, length: 7860 * KiB, pattern: 0x22 }]);
    const before = headerFields(base.bytes);
    const result = await expectCrashConsistent({
      name: 'reftable-growth-512-r16',
      base,
      // Long logs of big images: every point around flushes and header writes, one in 17 elsewhere.
      allPointsUpTo: 200,
      stride: 17,
      // Each check reads a 16 MiB image: about 1 s on a busy machine.
      maxChecks: 300,
      workload: randomWorkload({ seed: 22, from: 8 * MiB, to: 16 * MiB, clusterSize: 512, ops: 30, maxClusters: 40, zeroShare: 0.1, discardShare: 0.05 }),
    });
    const after = headerFields(result.final);
    expect(after.refcountTableClusters).toBeGreaterThan(before.refcountTableClusters);
  });
});

describe('crash consistency: L1 table growth (resize)', () => {
  it('64 KiB clusters: resize 1 GiB -> 64 GiB -> 1 TiB with writes before and after', async () => {
    const workload: GuestOp[] = [
      { op: 'write', offset: 0, length: 128 * KiB, pattern: 0x31 },
      { op: 'write', offset: 700 * MiB, length: 64 * KiB, pattern: 0x32 },
      { op: 'flush' },
      { op: 'resize', size: 64 * GiB },
      { op: 'write', offset: 10 * GiB, length: 96 * KiB, pattern: 0x33 },
      { op: 'write', offset: 0, length: 4 * KiB, pattern: 0x34 },
      { op: 'flush' },
      { op: 'write', offset: 63 * GiB + 17 * 512, length: 8 * KiB, pattern: 0x35 },
      { op: 'zero', offset: 10 * GiB, length: 64 * KiB },
      { op: 'resize', size: 1024 * GiB },
      { op: 'write', offset: 900 * GiB, length: 64 * KiB, pattern: 0x36 },
      { op: 'discard', offset: 0, length: 128 * KiB },
      { op: 'flush' },
      { op: 'write', offset: 1000 * GiB, length: 512, pattern: 0x37 },
      { op: 'close' },
    ];
    const base = await createdBase(1 * GiB);
    const before = headerFields(base.bytes);
    const result = await expectCrashConsistent({ name: 'l1-growth-64k', base, workload });
    const after = headerFields(result.final);
    expect(before.l1Size).toBe(2);
    expect(after.l1Size).toBe(2048);
    expect(after.l1Offset).not.toBe(before.l1Offset);
    expect(after.size).toBe(1024 * GiB);
  });

  it('512-byte clusters: growing with preallocation (new tables put in place in batches), writes between', async () => {
    const workload: GuestOp[] = [
      ...randomWorkload({ seed: 33, to: 1 * MiB, clusterSize: 512, ops: 8, maxClusters: 16 }),
      { op: 'resize', size: 3 * MiB, preallocation: 'metadata' },
      { op: 'write', offset: 2 * MiB + 3 * 512, length: 4 * KiB, pattern: 0x44 },
      { op: 'flush' },
      { op: 'resize', size: 5 * MiB, preallocation: 'falloc' },
      { op: 'write', offset: 5 * MiB - 8 * KiB, length: 8 * KiB, pattern: 0x45 },
      { op: 'zero', offset: 1 * MiB, length: 64 * KiB },
      { op: 'resize', size: 6 * MiB, preallocation: 'metadata' },
      { op: 'close' },
    ];
    const base = await createdBase(1 * MiB, { clusterBits: 9 });
    const result = await expectCrashConsistent({
      name: 'prealloc-growth-512',
      base,
      // Thousands of table and refcount writes: every point around flushes and header writes, one in 13 elsewhere.
      allPointsUpTo: 200,
      stride: 13,
      maxChecks: 300,
      workload,
    });
    expect(headerFields(result.final).size).toBe(6 * MiB);
  });

  it('512-byte clusters: the L1 table moves to 128 and then 512 clusters', async () => {
    const workload: GuestOp[] = [
      ...randomWorkload({ seed: 31, to: 1 * MiB, clusterSize: 512, ops: 12, maxClusters: 16 }),
      { op: 'resize', size: 256 * MiB },
      { op: 'write', offset: 200 * MiB, length: 16 * KiB, pattern: 0x41 },
      { op: 'write', offset: 1 * MiB - 4 * KiB, length: 12 * KiB, pattern: 0x42 },
      { op: 'flush' },
      ...randomWorkload({ seed: 32, from: 255 * MiB, to: 256 * MiB, clusterSize: 512, ops: 8, maxClusters: 16, firstPattern: 0x50 }),
      { op: 'resize', size: 1 * GiB },
      { op: 'write', offset: 1 * GiB - 8 * KiB, length: 8 * KiB, pattern: 0x43 },
      { op: 'discard', offset: 200 * MiB, length: 16 * KiB },
      { op: 'flush' },
    ];
    const base = await createdBase(1 * MiB, { clusterBits: 9 });
    const before = headerFields(base.bytes);
    const result = await expectCrashConsistent({ name: 'l1-growth-512', base, workload });
    const after = headerFields(result.final);
    expect(before.l1Size).toBe(32);
    expect(after.l1Size).toBe(32768);
  });
});
