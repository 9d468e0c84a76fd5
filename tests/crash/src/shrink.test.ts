import { describe, expect, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent, headerFields } from './harness.js';
import { qemuBase } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Shrinking (qcow resize --shrink): references past the new end go first (L2 entries, whole L2 tables from the
 * L1 table, each step synced), then the refcounts drop and empty refcount blocks are unhooked, then the header
 * takes the new size. A crash anywhere leaves the old or the new size, leaks at worst, and every flushed write
 * inside the new size readable.
 */
describe('crash consistency: shrink', () => {
  it('512-byte clusters, 64-bit refcounts: shrink past whole L2 tables and refcount blocks, then write and regrow', async () => {
    // One L2 table maps 32 KiB and one refcount block counts 64 clusters: the shrink drops many of each.
    const base = qemuBase(2 * MiB, 'cluster_size=512,refcount_bits=64', [{ op: 'write', offset: 0, length: 2 * MiB, pattern: 0x61 }]);
    const workload: GuestOp[] = [
      { op: 'write', offset: 1 * MiB + 3 * KiB, length: 4 * KiB, pattern: 0x62 },
      { op: 'flush' },
      { op: 'resize', size: 700 * KiB + 512 },
      { op: 'write', offset: 600 * KiB, length: 8 * KiB, pattern: 0x63 },
      { op: 'flush' },
      { op: 'resize', size: 1 * MiB },
      { op: 'write', offset: 900 * KiB, length: 2 * KiB, pattern: 0x64 },
      { op: 'close' },
    ];
    const result = await expectCrashConsistent({ name: 'shrink-512-r64', base, workload, maxChecks: 250 });
    expect(headerFields(result.final).size).toBe(1 * MiB);
  });

  it('64 KiB clusters with a snapshot: shrinking keeps what the snapshot reaches', async () => {
    // The snapshot is QEMU's: its tables share every cluster with the active state.
    const base = qemuBase(16 * MiB, '', [
      { op: 'write', offset: 0, length: 1 * MiB, pattern: 0x71 },
      { op: 'write', offset: 12 * MiB, length: 1 * MiB, pattern: 0x72 },
      { op: 'snapshot', name: 's1' },
    ]);
    const workload: GuestOp[] = [
      { op: 'write', offset: 12 * MiB + 64 * KiB, length: 64 * KiB, pattern: 0x73 },
      { op: 'flush' },
      { op: 'resize', size: 4 * MiB },
      { op: 'write', offset: 3 * MiB, length: 128 * KiB, pattern: 0x74 },
      { op: 'close' },
    ];
    const result = await expectCrashConsistent({ name: 'shrink-64k-snapshot', base, workload, maxChecks: 250 });
    expect(headerFields(result.final).size).toBe(4 * MiB);
  });
});
