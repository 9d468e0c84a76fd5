import { describe, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent } from './harness.js';
import { qemuBase } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Zero writes and discards over many L2 tables at once (entry-range-change.ts): tables the image has are changed in
 * place, missing ones are built and put in place together (written and synced before the L1 entries naming them),
 * and the clusters dropped are released only at the flush. 512-byte clusters give an L2 table per 32 KiB, so a few
 * MiB span hundreds of tables, most of them missing.
 */
describe('crash consistency: zeroing and discarding many tables at once', () => {
  const setup = [
    { op: 'write' as const, offset: 0, length: 96 * KiB, pattern: 0x11 },
    { op: 'write' as const, offset: 2 * MiB + 1536, length: 200 * KiB, pattern: 0x12 },
    { op: 'write' as const, offset: 5 * MiB, length: 64 * KiB, pattern: 0x13, compressed: true },
  ];
  const workload: GuestOp[] = [
    { op: 'write', offset: 7 * MiB, length: 4 * KiB, pattern: 0x21 },
    { op: 'zero', offset: 512, length: 6 * MiB - 1024 },
    { op: 'write', offset: 3 * MiB, length: 8 * KiB, pattern: 0x22 },
    { op: 'flush' },
    { op: 'zero', offset: 1 * MiB + 1536, length: 5 * MiB, unmap: true },
    { op: 'discard', offset: 6 * MiB, length: 2 * MiB },
    { op: 'write', offset: 5 * MiB + 512, length: 4 * KiB, pattern: 0x23 },
    { op: 'flush' },
    { op: 'discard', offset: 0, length: 3 * MiB },
    { op: 'zero', offset: 4 * MiB, length: 4 * MiB, unmap: true },
    { op: 'flush' },
  ];

  it('v3, 512-byte clusters: whole-range zero writes (kept and unmapped) and discards', async () => {
    await expectCrashConsistent({
      name: 'bulk-zero-512',
      base: qemuBase(8 * MiB, 'cluster_size=512', setup),
      workload,
      allPointsUpTo: 400,
      stride: 11,
      maxChecks: 400,
    });
  });

  it('extended L2, 16 KiB clusters (a table per 16 MiB): the same ops on subcluster entries', async () => {
    await expectCrashConsistent({
      name: 'bulk-zero-extl2',
      base: qemuBase(8 * MiB, 'cluster_size=16384,extended_l2=on', setup),
      workload,
    });
  });
});
