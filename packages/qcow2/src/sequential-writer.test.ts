import { checkImage } from '@q/check';
import { decodeHeader, type CompressionType } from '@q/format';
import { MemoryBlockFile, RecordingBlockFile } from '@q/raw';
import { describe, expect, it } from 'vitest';
import { defaultCreateOptions } from './create-image.js';
import { nodeCodecs } from './node-codecs.js';
import { nodeCompressor } from './node-compressors.js';
import { Qcow2Image } from './qcow2-image.js';
import { SequentialImageWriter, type SequentialImageOptions } from './sequential-writer.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** What to put in guest clusters: a run of plain clusters, one compressed cluster, or one zero-flagged cluster. */
type Step = { kind: 'data'; cluster: number; count: number } | { kind: 'compressed'; cluster: number } | { kind: 'zero'; cluster: number };

/**
 * A cluster's content: compressible (runs of a byte that depends on the cluster), with a few varying bytes so that
 * every cluster, and every place in it, differs from every other.
 */
function content(cluster: number, clusterSize: number): Uint8Array {
  const bytes = new Uint8Array(clusterSize).fill((cluster * 37 + 11) & 0xff);
  for (let at = 0; at < clusterSize; at += 512) bytes[at] = (cluster + at / 512) & 0xff;
  return bytes;
}

interface Built {
  bytes: Uint8Array;
  options: SequentialImageOptions;
  /** Guest clusters and what each must read (undefined: zeros). */
  expected: Map<number, Uint8Array | undefined>;
  steps: Step[];
}

/** Writes `steps` with the sequential writer into a fresh memory file and finishes the image. */
async function build(options: SequentialImageOptions, steps: Step[], o: { concurrent?: boolean } = {}): Promise<Built> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'sequential.qcow2' });
  const writer = await SequentialImageWriter.create(file, options);
  const clusterSize = writer.clusterSize;
  const compressor = nodeCompressor(options.compressionType);
  const expected = new Map<number, Uint8Array | undefined>();
  // Concurrent: every call is made before any is awaited (as convert pipelines its writes).
  const calls: Promise<void>[] = [];
  const settle = async (call: Promise<void>): Promise<void> => {
    if (o.concurrent === true) calls.push(call);
    else await call;
  };
  for (const step of steps) {
    if (step.kind === 'data') {
      const bytes = new Uint8Array(step.count * clusterSize);
      for (let i = 0; i < step.count; i++) {
        const one = content(step.cluster + i, clusterSize);
        bytes.set(one, i * clusterSize);
        expected.set(step.cluster + i, one);
      }
      await settle(writer.writeData(step.cluster, bytes));
    } else if (step.kind === 'compressed') {
      const one = content(step.cluster, clusterSize);
      const stream = compressor.compress(one);
      if (stream === undefined) throw new Error('test content did not compress');
      await settle(writer.writeCompressed(step.cluster, stream));
      expected.set(step.cluster, one);
    } else {
      await settle(writer.writeZero(step.cluster));
      expected.set(step.cluster, undefined);
    }
  }
  await Promise.all(calls);
  await writer.finish();
  return { bytes: file.contents().slice(), options, expected, steps };
}

function options(size: number, o: Partial<SequentialImageOptions> = {}): SequentialImageOptions {
  return { ...defaultCreateOptions(size), ...o };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Decodes the image with the project's own readers: the header fields, every guest cluster's bytes and kind, and
 * `@q/check` (qemu-img check's accounting) for refcounts equal to the references found, nothing else wrong.
 */
async function verify(built: Built): Promise<{ compressedHosts: Map<number, number>; report: Awaited<ReturnType<typeof checkImage>> }> {
  const { bytes, options: o, expected } = built;
  const header = decodeHeader(bytes);
  const clusterSize = 2 ** o.clusterBits;
  expect(header.version).toBe(o.version);
  expect(header.clusterBits).toBe(o.clusterBits);
  expect(header.refcountOrder).toBe(o.refcountOrder);
  expect(header.size).toBe(o.size);
  expect(header.l1TableOffset).toBe(clusterSize);

  const report = await checkImage(new MemoryBlockFile(bytes.slice(), { name: 'sequential.qcow2', writable: false }));
  expect(report.messages).toEqual([]);
  expect({ corruptions: report.corruptions, leaks: report.leaks, checkErrors: report.checkErrors }).toEqual({ corruptions: 0, leaks: 0, checkErrors: 0 });
  const compressedCount = built.steps.filter((step) => step.kind === 'compressed').length;
  expect(report.compressedClusters).toBe(compressedCount);

  const image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs() });
  const compressedHosts = new Map<number, number>();
  try {
    expect(image.compressionType).toBe(o.compressionType);
    const guestClusters = Math.ceil(o.size / clusterSize);
    const chunk = new Uint8Array(clusterSize);
    for (let cluster = 0; cluster < guestClusters; cluster++) {
      const want = expected.get(cluster);
      const [extent] = await image.map(cluster * clusterSize, clusterSize);
      if (!expected.has(cluster)) expect(extent?.kind, `cluster ${cluster}`).toBe('unallocated');
      else if (want === undefined) expect(extent?.kind, `cluster ${cluster}`).toBe('zero');
      else {
        expect(extent?.kind, `cluster ${cluster}`).toBe(built.steps.some((s) => s.kind === 'compressed' && s.cluster === cluster) ? 'compressed' : 'data');
        if (extent?.kind === 'compressed') {
          const host = Math.floor(extent.hostOffset / clusterSize);
          compressedHosts.set(host, (compressedHosts.get(host) ?? 0) + 1);
        }
      }
      await image.read(chunk, cluster * clusterSize);
      const difference = firstDifference(chunk, want ?? new Uint8Array(clusterSize));
      expect(difference, `guest cluster ${cluster} differs at byte ${difference}`).toBe(-1);
    }
  } finally {
    await image.close();
  }
  return { compressedHosts, report };
}

/** A mixed plan over `clusters` guest clusters: runs of data, compressed clusters between them, zero clusters, holes. */
function mixedPlan(clusters: number): Step[] {
  const steps: Step[] = [];
  for (let cluster = 0; cluster < clusters; ) {
    switch (cluster % 7) {
      case 0:
      case 1: {
        const count = Math.min(clusters - cluster, 3);
        steps.push({ kind: 'data', cluster, count });
        cluster += count;
        break;
      }
      case 4:
        steps.push({ kind: 'zero', cluster });
        cluster += 2; // and a hole
        break;
      default:
        steps.push({ kind: 'compressed', cluster });
        cluster++;
    }
  }
  return steps;
}

describe('SequentialImageWriter: layouts decoded by the project and checked by @q/check', () => {
  const layouts: Array<{ name: string; size: number; o: Partial<SequentialImageOptions>; clusters: number }> = [
    // 64 entries per L2 table: data runs and compressed clusters cross many L2 tables.
    { name: '512-byte clusters', size: 1 * MiB, o: { clusterBits: 9 }, clusters: 300 },
    { name: '64 KiB clusters', size: 8 * MiB, o: {}, clusters: 128 },
    { name: '2 MiB clusters', size: 24 * MiB, o: { clusterBits: 21 }, clusters: 12 },
    { name: '64 KiB clusters, 1-bit refcounts', size: 4 * MiB, o: { refcountOrder: 0 }, clusters: 64 },
    { name: '64 KiB clusters, 64-bit refcounts', size: 4 * MiB, o: { refcountOrder: 6 }, clusters: 64 },
    { name: '512-byte clusters, 64-bit refcounts', size: 1 * MiB, o: { clusterBits: 9, refcountOrder: 6 }, clusters: 200 },
    { name: '64 KiB clusters, extended L2', size: 4 * MiB, o: { extendedL2: true }, clusters: 64 },
    { name: '32 KiB clusters, extended L2, zstd', size: 4 * MiB, o: { clusterBits: 15, extendedL2: true, compressionType: 'zstd' }, clusters: 100 },
    { name: '4 KiB clusters, zstd', size: 1 * MiB, o: { clusterBits: 12, compressionType: 'zstd' }, clusters: 256 },
  ];
  for (const layout of layouts) {
    it(`${layout.name}: data runs, compressed, zero clusters and holes`, async () => {
      const built = await build(options(layout.size, layout.o), mixedPlan(layout.clusters));
      const { compressedHosts } = await verify(built);
      const shared = [...compressedHosts.values()].some((count) => count > 1);
      // Compressed clusters between plain runs still share host clusters, except where a refcount of 1 is the most.
      expect(shared).toBe(layout.o.refcountOrder !== 0);
    });
  }

  it('an empty image: header, one L1 cluster, refcounts, nothing mapped', async () => {
    const built = await build(options(1 * MiB), []);
    await verify(built);
    expect(built.bytes.length).toBe(4 * 64 * KiB);
  });

  it('compat 0.10: data and compressed clusters; zero clusters are refused', async () => {
    const built = await build(options(4 * MiB, { version: 2 }), mixedPlan(64).filter((step) => step.kind !== 'zero'));
    await verify(built);
    const writer = await SequentialImageWriter.create(new MemoryBlockFile(new Uint8Array(0)), options(4 * MiB, { version: 2 }));
    await expect(writer.writeZero(0)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });

  it('compressed clusters one after another share host clusters, each counting a reference', async () => {
    const steps: Step[] = Array.from({ length: 32 }, (_, cluster) => ({ kind: 'compressed', cluster }));
    const built = await build(options(4 * MiB), steps);
    const { compressedHosts } = await verify(built);
    // 32 small streams: all in one or two host clusters.
    expect(compressedHosts.size).toBeLessThanOrEqual(2);
  });

  it('refcounts reserved up front: they sit between the L1 table and the data', async () => {
    const built = await build(options(8 * MiB), mixedPlan(128));
    const header = decodeHeader(built.bytes);
    await verify(built);
    expect(header.refcountTableOffset).toBe(3 * 64 * KiB);
  });

  it('an image whose refcount needs pass the reservation: refcounts go at the end', async () => {
    // 512-byte clusters, 64-bit refcounts: a block counts 64 clusters; a 4 MiB disk may use more than 8192
    // clusters, 130+ refcount clusters, past the 64 reserved up front. Written sparsely, the image needs few.
    const steps = mixedPlan(8192).filter((step) => step.cluster % 50 < 10);
    const built = await build(options(4 * MiB, { clusterBits: 9, refcountOrder: 6 }), steps);
    const header = decodeHeader(built.bytes);
    await verify(built);
    // The refcount table is the last cluster of the file: after every data cluster and L2 table.
    expect(header.refcountTableOffset).toBe(built.bytes.length - 512 * header.refcountTableClusters);
    expect(header.refcountTableClusters).toBeGreaterThanOrEqual(1);
  });

  it('refcounts at the end, many: the table itself needs several clusters', async () => {
    // 512-byte clusters, 64-bit refcounts, fully written 4 MiB: 8192 data clusters + 128 L2 tables, 131 blocks,
    // and a refcount table of 131 entries = 3 clusters.
    const built = await build(options(4 * MiB, { clusterBits: 9, refcountOrder: 6 }), [{ kind: 'data', cluster: 0, count: 8192 }]);
    const header = decodeHeader(built.bytes);
    await verify(built);
    expect(header.refcountTableClusters).toBeGreaterThan(1);
    expect(header.refcountTableOffset + header.refcountTableClusters * 512).toBe(built.bytes.length);
  });

  it('writes go forward only, inside the disk, in whole clusters; nothing after finish', async () => {
    const file = new MemoryBlockFile(new Uint8Array(0));
    const writer = await SequentialImageWriter.create(file, options(1 * MiB));
    await writer.writeData(2, new Uint8Array(64 * KiB));
    await expect(writer.writeData(2, new Uint8Array(64 * KiB))).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(writer.writeZero(1)).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(writer.writeData(3, new Uint8Array(1000))).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(writer.writeZero(16)).rejects.toMatchObject({ code: 'E_INVALID' });
    // A compressed stream longer than a cluster is refused before anything is counted: the image stays clean.
    await expect(writer.writeCompressed(4, new Uint8Array(64 * KiB + 1))).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(writer.writeCompressed(4, new Uint8Array(0))).rejects.toMatchObject({ code: 'E_INVALID' });
    await writer.finish();
    await expect(writer.writeZero(5)).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'E_INVALID' });
    const report = await checkImage(new MemoryBlockFile(file.contents().slice(), { writable: false }));
    expect({ corruptions: report.corruptions, leaks: report.leaks }).toEqual({ corruptions: 0, leaks: 0 });
  });
});

describe('SequentialImageWriter: write order', () => {
  it('data and L2 tables, refcounts, sync, L1 table, sync, header, sync: nothing touches cluster 0 before the end', async () => {
    const recording = await RecordingBlockFile.wrap(new MemoryBlockFile(new Uint8Array(0)));
    const writer = await SequentialImageWriter.create(recording, options(4 * MiB, { clusterBits: 12 }));
    const compressor = nodeCompressor('zlib' satisfies CompressionType);
    await writer.writeData(0, content(0, 4 * KiB));
    await writer.writeCompressed(1, compressor.compress(content(1, 4 * KiB))!);
    await writer.writeData(600, new Uint8Array(8 * KiB).fill(3));
    await writer.finish();
    const ops = recording.ops.map((op) => (op.kind === 'write' ? `write@${op.offset}` : op.kind));
    // The head: the file (empty already, so not truncated again) synced before any write.
    expect(ops.slice(0, 1)).toEqual(['flush']);
    // The tail: refcounts (one write), flush, L1 table (cluster 1), flush, header (cluster 0), flush.
    expect(ops.slice(-6)).toEqual([`write@${2 * 4096}`, 'flush', 'write@4096', 'flush', 'write@0', 'flush']);
    expect(ops.slice(1, -6)).not.toContain('flush');
    expect(ops.slice(0, -2).filter((op) => op === 'write@0')).toEqual([]);
  });

  it('not durable (cache=unsafe): the same writes in the same order, no sync', async () => {
    const durable = await RecordingBlockFile.wrap(new MemoryBlockFile(new Uint8Array(0)));
    const unsafe = await RecordingBlockFile.wrap(new MemoryBlockFile(new Uint8Array(0)));
    for (const [file, write] of [[durable, {}], [unsafe, { durable: false }]] as const) {
      const writer = await SequentialImageWriter.create(file, options(4 * MiB, { clusterBits: 12 }), write);
      await writer.writeData(0, content(0, 4 * KiB));
      await writer.writeData(600, new Uint8Array(8 * KiB).fill(3));
      await writer.finish();
    }
    const ops = (file: RecordingBlockFile): string[] => file.ops.map((op) => (op.kind === 'write' ? `write@${op.offset}` : op.kind));
    expect(ops(unsafe)).not.toContain('flush');
    expect(ops(unsafe)).toEqual(ops(durable).filter((op) => op !== 'flush'));
  });
});

describe('SequentialImageWriter: calls made before earlier ones landed', () => {
  it('give the same image byte for byte as calls awaited one by one', async () => {
    const o = options(8 * MiB, { clusterBits: 12 });
    const plan = mixedPlan(2048);
    const awaited = await build(o, plan);
    const concurrent = await build(o, plan, { concurrent: true });
    expect(firstDifference(concurrent.bytes, awaited.bytes)).toBe(-1);
    await verify(concurrent);
  });

  it('a write that fails rejects its call and stops finish before any metadata is written', async () => {
    const file = new MemoryBlockFile(new Uint8Array(0), { name: 'failing.qcow2' });
    const writer = await SequentialImageWriter.create(file, options(4 * MiB));
    const failing = { ...file, write: (src: Uint8Array, offset: number) => (src[0] === 2 ? Promise.reject(new Error(`EIO at ${offset}`)) : file.write(src, offset)) };
    Object.assign(writer, { file: failing });
    const first = writer.writeData(0, new Uint8Array(65536).fill(1));
    const second = writer.writeData(4, new Uint8Array(65536).fill(2));
    await expect(first).resolves.toBeUndefined();
    await expect(second).rejects.toThrow(/EIO/);
    await expect(writer.finish()).rejects.toThrow(/EIO/);
    expect(file.contents().subarray(0, 4).every((byte) => byte === 0)).toBe(true);
  });
});

describe('SequentialImageWriter regressions', () => {
  it('regression: lost truncation over an old image: the emptying is synced before the first new byte', async () => {
    // An old image at the path: a crash that lost the truncation but kept new writes paired its header with new
    // bytes over its tables (tests/crash sequential.test.ts replays every cut).
    const old = new MemoryBlockFile(new Uint8Array(0));
    const oldWriter = await SequentialImageWriter.create(old, options(1 * MiB));
    await oldWriter.writeData(0, new Uint8Array(1 * MiB).fill(0x5e));
    await oldWriter.finish();
    const recording = await RecordingBlockFile.wrap(new MemoryBlockFile(old.contents().slice()));
    const writer = await SequentialImageWriter.create(recording, options(1 * MiB));
    await writer.writeData(0, new Uint8Array(64 * KiB).fill(1));
    const firstWrite = recording.ops.findIndex((op) => op.kind === 'write');
    const truncate = recording.ops.findIndex((op) => op.kind === 'truncate');
    const synced = recording.ops.findIndex((op) => op.kind === 'flush');
    expect(truncate).toBe(0);
    expect(synced).toBeGreaterThan(truncate);
    expect(synced).toBeLessThan(firstWrite);
    // Any crash after the first write: the old header is gone for good.
    const state = recording.crash(firstWrite + 1, { kind: 'drop-all' });
    expect(state.bytes.subarray(0, 4)).not.toEqual(new Uint8Array([0x51, 0x46, 0x49, 0xfb]));
  });
});
