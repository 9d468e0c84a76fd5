import { describe, expect, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent, headerFields } from './harness.js';
import { qemuBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Space given back under the crash harness: freed clusters become holes (recorded as zeros over the range, not
 * durable until the next flush), so every crash point also shows what a hole punched too early would do. The
 * contract: no crash image is corrupt, and every write acknowledged before the last completed flush reads back,
 * here including data in clusters that were freed, punched and allocated again, compressed clusters sharing a
 * host cluster with ones being replaced, and the clusters of a snapshot that stays while others are deleted.
 */
describe('crash consistency: punched holes', () => {
  it('64 KiB clusters: discards, zero writes with unmap and overwrites of compressed clusters, over data QEMU wrote', async () => {
    const base = qemuBase(4 * MiB, '', [
      { op: 'write', offset: 0, length: 2 * MiB, pattern: 0x21 },
      { op: 'write', offset: 2 * MiB, length: 512 * KiB, pattern: 0x22, compressed: true },
      { op: 'write', offset: 3 * MiB, length: 256 * KiB, pattern: 0x23, compressed: true },
    ]);
    const workload: GuestOp[] = [
      { op: 'discard', offset: 0, length: 512 * KiB },
      { op: 'write', offset: 2 * MiB + 4 * KiB, length: 8 * KiB, pattern: 0x31 },
      { op: 'flush' },
      { op: 'zero', offset: 1 * MiB, length: 256 * KiB, unmap: true },
      { op: 'write', offset: 3 * MiB + 64 * KiB, length: 64 * KiB, pattern: 0x32 },
      { op: 'write', offset: 3 * MiB + 160 * KiB, length: 4 * KiB, pattern: 0x33 },
      { op: 'flush' },
      // New data: the allocator hands out the clusters freed above first.
      { op: 'write', offset: 3 * MiB + 512 * KiB, length: 384 * KiB, pattern: 0x34 },
      { op: 'discard', offset: 2 * MiB, length: 256 * KiB },
      { op: 'flush' },
      ...randomWorkload({ seed: 61, to: 4 * MiB, clusterSize: 64 * KiB, ops: 14, maxClusters: 4, zeroShare: 0.2, discardShare: 0.3, firstPattern: 0x40 }),
      { op: 'close' },
    ];
    const result = await expectCrashConsistent({ name: 'space-64k', base, workload });
    expect(result.deallocations).toBeGreaterThan(3);
  });

  it('4 KiB clusters, 4-bit refcounts: snapshots deleted around one that stays; the L1 table moves and its cluster is reused', async () => {
    const base = qemuBase(2 * MiB, 'cluster_size=4k,refcount_bits=4', [
      { op: 'write', offset: 0, length: 512 * KiB, pattern: 0x51 },
      { op: 'snapshot', name: 'keep' },
      { op: 'write', offset: 256 * KiB, length: 128 * KiB, pattern: 0x52 },
    ]);
    const part = (seed: number, pattern: number): GuestOp[] => randomWorkload({ seed, to: 2 * MiB, clusterSize: 4 * KiB, ops: 6, maxClusters: 8, discardShare: 0.3, firstPattern: pattern });
    const workload: GuestOp[] = [
      { op: 'snapshot', action: 'create', name: 's1' },
      ...part(71, 0x60),
      { op: 'snapshot', action: 'create', name: 's2' },
      { op: 'write', offset: 0, length: 64 * KiB, pattern: 0x70 },
      { op: 'discard', offset: 384 * KiB, length: 64 * KiB },
      { op: 'snapshot', action: 'delete', name: 's1' },
      // Reuses what s1 gave back.
      { op: 'write', offset: 1 * MiB, length: 96 * KiB, pattern: 0x71 },
      { op: 'flush' },
      // Past 1 GiB the L1 table needs a second cluster: it moves, and its old cluster is free for the next table.
      { op: 'resize', size: 2048 * MiB },
      { op: 'write', offset: 1536 * MiB, length: 16 * KiB, pattern: 0x72 },
      ...part(72, 0x80),
      { op: 'snapshot', action: 'delete', name: 's2' },
      { op: 'write', offset: 1800 * MiB, length: 32 * KiB, pattern: 0x73 },
      { op: 'flush' },
    ];
    const result = await expectCrashConsistent({ name: 'space-snapshots-4k', base, lazy: true, workload });
    expect(result.deallocations).toBeGreaterThan(3);
    const before = headerFields(base.bytes);
    const after = headerFields(result.final);
    expect(after.l1Offset).not.toBe(before.l1Offset);
    // The table for 1536 MiB (L1 index 768) went where the old L1 table was.
    const view = new DataView(result.final.buffer, result.final.byteOffset);
    expect(view.getUint32(after.l1Offset + 768 * 8 + 4) & ~0x1ff).toBe(before.l1Offset);
  });
});
