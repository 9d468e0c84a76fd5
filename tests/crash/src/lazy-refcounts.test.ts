import { describe, it } from 'vitest';
import { expectCrashConsistent } from './harness.js';
import { qemuBase, randomWorkload } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Plain writes on lazy_refcounts=on images. Refcounts are written without syncs there, so nothing in the refcount
 * path orders data before the L2 entries naming it: the write path must (a flushed write reads back, an unflushed
 * one reads old or new, never another cluster's stale bytes or bytes from before a flushed zero write).
 */
describe('crash consistency: lazy refcounts', () => {
  // Over data QEMU wrote (0x11 in the first half): a reused or zero-flagged cluster whose new data did not land
  // shows stale bytes the model does not allow, where a fresh image would show zeros.
  it('extended L2 (64 KiB clusters): subcluster writes over zeroed and discarded subclusters', async () => {
    await expectCrashConsistent({
      name: 'lazy-extl2',
      base: qemuBase(4 * MiB, 'lazy_refcounts=on,extended_l2=on', [{ op: 'write', offset: 0, length: 2 * MiB, pattern: 0x11 }]),
      lazy: true,
      workload: randomWorkload({ seed: 73, to: 4 * MiB, clusterSize: 64 * KiB, ops: 40, zeroShare: 0.25, discardShare: 0.15, firstPattern: 0x40 }),
      maxChecks: 250,
    });
  });

  // Small L2 caches over small clusters: the writes below cycle through more L2 tables than the cache holds, so
  // tables are written back (evicted) between flushes, each naming data the write just put into a reused cluster.
  it.each([
    { clusterSize: 512, table: 32 * KiB },
    { clusterSize: 4 * KiB, table: 2 * MiB },
  ])('over data QEMU wrote ($clusterSize-byte clusters): flushed zero writes, then writes into those clusters; freed clusters reused', async ({ clusterSize, table }) => {
    const size = 4 * table;
    await expectCrashConsistent({
      name: `lazy-zero-then-write-${clusterSize}`,
      base: qemuBase(size, `lazy_refcounts=on,cluster_size=${clusterSize}`, [{ op: 'write', offset: 0, length: size, pattern: 0x11 }]),
      lazy: true,
      l2CacheBytes: clusterSize,
      workload: [
        { op: 'zero', offset: 0, length: 2 * clusterSize },
        { op: 'zero', offset: table, length: 2 * clusterSize },
        { op: 'flush' },
        { op: 'write', offset: 512, length: 512, pattern: 0x22 },
        { op: 'write', offset: table + clusterSize, length: clusterSize, pattern: 0x23 },
        { op: 'write', offset: 3 * table, length: 2 * clusterSize, pattern: 0x24 },
        { op: 'flush' },
        { op: 'discard', offset: 4 * clusterSize, length: 8 * clusterSize },
        { op: 'discard', offset: table + 4 * clusterSize, length: 8 * clusterSize },
        { op: 'flush' },
        { op: 'write', offset: 2 * table + 512, length: 4 * clusterSize, pattern: 0x25 },
        { op: 'write', offset: 3 * table + 4 * clusterSize, length: 4 * clusterSize, pattern: 0x26 },
        { op: 'write', offset: 2 * table + 8 * clusterSize, length: 512, pattern: 0x27 },
        { op: 'flush' },
        { op: 'write', offset: 3 * table + 16 * clusterSize, length: 2 * clusterSize, pattern: 0x28 },
        { op: 'close' },
      ],
    });
  });
});
