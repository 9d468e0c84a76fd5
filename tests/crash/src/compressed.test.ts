import { Qcow2Image } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { MemoryBlockFile } from '@q/raw';
import { describe, expect, it } from 'vitest';
import type { GuestOp } from './guest-model.js';
import { expectCrashConsistent, seeded } from './harness.js';
import { createdBase, qemuBase } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface CompressedWorkloadOptions {
  seed: number;
  /** Guest bytes the ops fall in: a small disk, so compressed clusters are overwritten often. */
  to: number;
  clusterSize: number;
  ops: number;
  firstPattern?: number;
}

/**
 * Compressed writes (streams of every size: a few dozen bytes from the real compressor, or up to nine tenths of a
 * cluster, so compressed data crosses host cluster boundaries and fills host clusters) mixed with plain writes
 * (whole clusters, and sector runs inside a compressed cluster: copy-on-write of compressed data), zero writes,
 * discards and flushes. Overwrites of compressed clusters, by either kind of write, come from the small disk.
 */
function compressedWorkload(o: CompressedWorkloadOptions): GuestOp[] {
  const random = seeded(o.seed);
  const clusters = o.to / o.clusterSize;
  const ops: GuestOp[] = [];
  let pattern = o.firstPattern ?? 1;
  const nextPattern = (): number => {
    const value = pattern;
    pattern = (pattern % 255) + 1;
    return value;
  };
  let sinceFlush = 0;
  for (let i = 0; i < o.ops; i++) {
    const kind = random();
    const first = Math.floor(random() * clusters);
    const count = Math.min(clusters - first, 1 + Math.floor(random() * 4));
    const offset = first * o.clusterSize;
    if (kind < 0.5) {
      const size = random();
      const rawBytes = size < 0.35 ? undefined : size < 0.6 ? Math.floor(random() * (o.clusterSize / 8)) + 1 : Math.floor(o.clusterSize * (0.4 + random() * 0.5));
      ops.push({ op: 'compressed', offset, length: count * o.clusterSize, pattern: nextPattern(), ...(rawBytes === undefined ? {} : { rawBytes }) });
    } else if (kind < 0.72) {
      // Half of the plain writes are a few sectors inside one cluster: over a compressed cluster, a copy-on-write.
      const partial = random() < 0.5;
      const sectors = o.clusterSize / 512;
      const start = partial ? offset + Math.floor(random() * sectors) * 512 : offset;
      const length = partial ? Math.min(offset + o.clusterSize - start, (1 + Math.floor(random() * 3)) * 512) : count * o.clusterSize;
      ops.push({ op: 'write', offset: start, length, pattern: nextPattern() });
    } else if (kind < 0.84) {
      ops.push({ op: 'discard', offset, length: count * o.clusterSize });
    } else {
      ops.push({ op: 'zero', offset, length: count * o.clusterSize, unmap: random() < 0.5 });
    }
    sinceFlush++;
    if (sinceFlush >= 2 + Math.floor(random() * 3)) {
      ops.push({ op: 'flush' });
      sinceFlush = 0;
    }
  }
  ops.push({ op: 'flush' });
  return ops;
}

/**
 * How the compressed clusters of an image lie: how many there are, how many share their first host cluster with
 * another one, and how many cross a host cluster boundary (what the workloads are meant to produce).
 */
async function compressedLayout(bytes: Uint8Array): Promise<{ compressed: number; sharing: number; crossing: number }> {
  const image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs() });
  try {
    const clusterSize = image.metadata.geometry.clusterSize;
    const firstHost = new Map<number, number>();
    let compressed = 0;
    let crossing = 0;
    for (const extent of await image.map(0, image.size)) {
      if (extent.kind !== 'compressed') continue;
      // Consecutive compressed clusters come as one extent: the mapper's own per-cluster hosts are not in it, so
      // map cluster by cluster.
      for (let at = extent.guestOffset; at < extent.guestOffset + extent.length; at += clusterSize) {
        const [one] = await image.map(at, clusterSize);
        if (one?.kind !== 'compressed') continue;
        compressed++;
        const host = Math.floor(one.hostOffset / clusterSize);
        firstHost.set(host, (firstHost.get(host) ?? 0) + 1);
        if (Math.floor((one.hostOffset + one.compressedBytes - 1) / clusterSize) !== host) crossing++;
      }
    }
    const sharing = [...firstHost.values()].filter((count) => count > 1).reduce((sum, count) => sum + count, 0);
    return { compressed, sharing, crossing };
  } finally {
    await image.close();
  }
}

/**
 * Qcow2Image.writeCompressed under the crash harness: several compressed clusters share a host cluster, each
 * holding one reference to it, so overwriting or discarding one must drop only its reference, and only after the
 * L2 table no longer names it; a new compressed cluster packed into a partly used host cluster raises that
 * cluster's refcount before its L2 entry is written. Every crash point: no corruption, every flushed write reads
 * back (in-process and, at a sample of points, through qemu-img convert).
 */
describe('crash consistency: compressed writes', () => {
  it('4 KiB clusters, zlib: streams crossing host clusters, copy-on-write over compressed clusters', async () => {
    const workload = compressedWorkload({ seed: 81, to: 256 * KiB, clusterSize: 4 * KiB, ops: 36 });
    const result = await expectCrashConsistent({
      name: 'compressed-4k-zlib',
      base: await createdBase(256 * KiB, { clusterBits: 12 }),
      workload,
      maxChecks: 250,
    });
    expect(workload.filter((op) => op.op === 'compressed').length).toBeGreaterThan(10);
    expect(result.deallocations).toBeGreaterThan(0);
    const layout = await compressedLayout(result.final);
    expect(layout.sharing).toBeGreaterThan(1);
    expect(layout.crossing).toBeGreaterThan(0);
  });

  it('64 KiB clusters, zstd', async () => {
    const workload = compressedWorkload({ seed: 82, to: 2 * MiB, clusterSize: 64 * KiB, ops: 36, firstPattern: 0x40 });
    const result = await expectCrashConsistent({
      name: 'compressed-64k-zstd',
      base: await createdBase(2 * MiB, { compressionType: 'zstd' }),
      workload,
      // Each check reads a 2 MiB image, twice the work of the 4 KiB scenarios' checks.
      maxChecks: 160,
    });
    const layout = await compressedLayout(result.final);
    expect(layout.sharing).toBeGreaterThan(1);
  });

  it('64 KiB clusters, zlib, over clusters QEMU compressed (its partly filled host cluster), then closed', async () => {
    const base = qemuBase(2 * MiB, '', [
      { op: 'write', offset: 0, length: 512 * KiB, pattern: 0x71, compressed: true },
      { op: 'write', offset: 1 * MiB, length: 256 * KiB, pattern: 0x72 },
    ]);
    const workload: GuestOp[] = [...compressedWorkload({ seed: 83, to: 2 * MiB, clusterSize: 64 * KiB, ops: 28, firstPattern: 0x80 }), { op: 'close' }];
    const result = await expectCrashConsistent({ name: 'compressed-64k-zlib-qemu', base, workload, maxChecks: 140 });
    expect((await compressedLayout(result.final)).compressed).toBeGreaterThan(4);
  });

  it('4 KiB clusters, zstd, 1-bit refcounts: host clusters are never shared', async () => {
    const workload = compressedWorkload({ seed: 84, to: 256 * KiB, clusterSize: 4 * KiB, ops: 24, firstPattern: 0xa0 });
    const result = await expectCrashConsistent({
      name: 'compressed-4k-zstd-refcount1',
      base: await createdBase(256 * KiB, { clusterBits: 12, refcountOrder: 0, compressionType: 'zstd' }),
      workload,
      maxChecks: 150,
    });
    const layout = await compressedLayout(result.final);
    expect(layout.compressed).toBeGreaterThan(4);
    expect(layout.sharing).toBe(0);
  });

  it('regression: lazy refcounts: L2 table written back before the compressed data it names was synced (4 KiB clusters, zlib)', async () => {
    const workload: GuestOp[] = [...compressedWorkload({ seed: 85, to: 256 * KiB, clusterSize: 4 * KiB, ops: 20, firstPattern: 0xc0 }), { op: 'close' }];
    await expectCrashConsistent({
      name: 'compressed-4k-zlib-lazy',
      base: await createdBase(256 * KiB, { clusterBits: 12, lazyRefcounts: true }),
      lazy: true,
      workload,
      maxChecks: 120,
    });
  });

  // Regression (compressed run continued into a freed host cluster): once every compressed cluster in the run's
  // host cluster is gone, the allocator hands that cluster out again (data, an L2 table); the next compressed
  // cluster must start afresh instead of packing into it.
  it('4 KiB clusters: the run\'s host cluster freed and handed out again as data and as an L2 table', async () => {
    const workload: GuestOp[] = [
      { op: 'compressed', offset: 0, length: 8 * KiB, pattern: 0x11 },
      { op: 'flush' },
      { op: 'discard', offset: 0, length: 8 * KiB },
      { op: 'flush' },
      { op: 'write', offset: 20 * KiB, length: 4 * KiB, pattern: 0x12 },
      { op: 'compressed', offset: 8 * KiB, length: 4 * KiB, pattern: 0x13 },
      { op: 'flush' },
      { op: 'compressed', offset: 12 * KiB, length: 4 * KiB, pattern: 0x14, rawBytes: 3000 },
      { op: 'write', offset: 12 * KiB, length: 4 * KiB, pattern: 0x15 },
      { op: 'discard', offset: 8 * KiB, length: 4 * KiB },
      { op: 'flush' },
      // A new L2 table (40 MiB is another table's range) takes the lowest free cluster.
      { op: 'write', offset: 40 * MiB, length: 4 * KiB, pattern: 0x16 },
      { op: 'compressed', offset: 16 * KiB, length: 8 * KiB, pattern: 0x17 },
      { op: 'write', offset: 20 * KiB + 512, length: 1 * KiB, pattern: 0x18 },
      { op: 'flush' },
      { op: 'close' },
    ];
    await expectCrashConsistent({ name: 'compressed-run-freed-4k', base: await createdBase(64 * MiB, { clusterBits: 12 }), workload, maxChecks: 150, qemuReads: 10 });
  });
});
