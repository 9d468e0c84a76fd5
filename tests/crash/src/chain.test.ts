import { closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent } from './harness.js';
import { createdBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The write paths of `qcow commit` and `qcow rebase` under the crash harness. Emptying an overlay (commit) drops
 * whole L2 tables: the L1 entries must be durable before any refcount drops, so a crash only leaks. A safe
 * rebase writes the old backing file's bytes into unallocated clusters, then rewrites the header in one write:
 * the header may name the new file only once the copied data is durable. The backing file these images name is
 * a raw file of zeros (what qemu-img check and convert open), so the guest reads what the model says either way.
 */
const ZERO_BACKING = `/dev/shm/qcow-crash-zero-backing-${process.pid}.raw`;

function part(seed: number, size: number, clusterSize: number, ops: number, firstPattern: number): GuestOp[] {
  return randomWorkload({ seed, to: size, clusterSize, ops, maxClusters: 3, firstPattern });
}

describe('crash consistency: commit and rebase', () => {
  beforeAll(() => {
    const fd = openSync(ZERO_BACKING, 'w');
    ftruncateSync(fd, 8 * MiB);
    closeSync(fd);
  });
  afterAll(() => rmSync(ZERO_BACKING, { force: true }));

  it('emptying an overlay (64 KiB clusters), then writing and emptying again', async () => {
    await expectCrashConsistent({
      name: 'make-empty-64k',
      base: await createdBase(4 * MiB),
      workload: [...part(61, 4 * MiB, 64 * KiB, 12, 0x10), { op: 'empty' }, ...part(62, 4 * MiB, 64 * KiB, 8, 0x40), { op: 'empty' }],
      maxChecks: 500,
    });
  });

  it('emptying an overlay with a snapshot (512-byte clusters, many L2 tables, shared tables)', async () => {
    await expectCrashConsistent({
      name: 'make-empty-snapshot-512',
      base: await createdBase(1 * MiB, { clusterBits: 9 }),
      lazy: true,
      workload: [
        ...part(63, 1 * MiB, 512, 10, 0x10),
        { op: 'snapshot', action: 'create', name: 's1' },
        ...part(64, 1 * MiB, 512, 6, 0x30),
        { op: 'empty' },
        ...part(65, 1 * MiB, 512, 4, 0x50),
        { op: 'snapshot', action: 'delete', name: 's1' },
        { op: 'empty' },
      ],
      maxChecks: 500,
    });
  });

  it('a rebase writing into an overlay, then naming the new backing file, then removing it', async () => {
    await expectCrashConsistent({
      name: 'rebase-writes-header',
      base: await createdBase(4 * MiB),
      workload: [
        ...part(66, 4 * MiB, 64 * KiB, 8, 0x10),
        { op: 'flush' },
        // The copy step: old bytes into clusters the overlay did not allocate, zero writes past the old end.
        { op: 'write', offset: 1 * MiB, length: 256 * KiB, pattern: 0x71 },
        { op: 'write', offset: 3 * MiB + 512, length: 4 * KiB, pattern: 0x72 },
        { op: 'zero', offset: 2 * MiB, length: 128 * KiB },
        { op: 'backing', name: ZERO_BACKING },
        ...part(67, 4 * MiB, 64 * KiB, 6, 0x50),
        { op: 'backing' },
      ],
      maxChecks: 500,
    });
  });
});
