import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GiB, KiB, MiB, qemuImg, qemuIo, Rng, type WorkloadShape } from '@q/test-support';

/**
 * The image configurations the random workloads run on. `prepare` builds the starting image `start.qcow2` (and any
 * backing file) in a directory with qemu-img/qemu-io only; the harness copies that directory once per run.
 */
export interface WriteConfig {
  name: string;
  shape: Omit<WorkloadShape, 'count'>;
  seeds: number[];
  count: number;
  prepare(dir: string): void;
  /** An internal snapshot whose content must survive the workload. */
  snapshot?: string;
  /** The dirty flag must be clear after every `qcow io` run (lazy refcounts). */
  checkDirty?: boolean;
  /** The refcount table must have moved or grown (header bytes 48-59 differ from the starting image). */
  expectRefcountTableGrowth?: boolean;
}

const START = 'start.qcow2';
const odd = 8 * MiB + 3584; // not a multiple of any cluster size: the last cluster is partial
const big = GiB + 3 * KiB;

function create(dir: string, opts: string, size: number, extra: string[] = []): void {
  qemuImg(['create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), ...extra, join(dir, START), String(size)], { cwd: dir });
}

/** Some data so that the workload overwrites, zeroes and discards allocated clusters too. */
function seedData(image: string, size: number, format = 'qcow2', cwd?: string): void {
  const rng = new Rng(size ^ 0x5eed);
  const cmds: string[] = [];
  for (let i = 0; i < 24; i += 1) {
    const len = rng.range(1, 200 * KiB);
    const off = rng.int(size - len);
    cmds.push(`write -P ${rng.range(1, 255)} ${off} ${len}`);
  }
  cmds.push(`write -P 0x3c 0 ${192 * KiB}`, `write -P 0x3d ${size - 100 * KiB} ${100 * KiB}`);
  qemuIo(image, cmds, { format, ...(cwd ? { cwd } : {}) });
}

/** A compressible raw file: text, runs of one byte, zeros and a little random data, in 4 KiB pieces. */
function compressibleRaw(path: string, size: number): void {
  const rng = new Rng(7);
  const buf = Buffer.alloc(size);
  const words = ['qcow2 ', 'cluster ', 'refcount ', 'snapshot ', 'backing ', 'L2 table '];
  for (let off = 0; off < size; off += 4096) {
    const end = Math.min(size, off + 4096);
    const kind = rng.int(5);
    if (kind === 0) for (let i = off; i < end; i += 4) buf.writeUInt32LE(rng.next(), i);
    else if (kind <= 2) for (let i = off; i < end; ) i += buf.write(rng.pick(words), i, end - i, 'latin1');
    else if (kind === 3) buf.fill(rng.range(1, 255), off, end);
  }
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, buf);
  } finally {
    closeSync(fd);
  }
}

function compressed(type: 'zlib' | 'zstd'): WriteConfig {
  return {
    name: `compressed image (${type})`,
    shape: { size: 8 * MiB, clusterSize: 64 * KiB },
    seeds: [31, 32, 131],
    count: 400,
    prepare(dir) {
      compressibleRaw(join(dir, 'source.raw'), 8 * MiB);
      qemuImg(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=${type}`, 'source.raw', START], { cwd: dir });
    },
  };
}

export const configs: WriteConfig[] = [
  {
    name: 'v2 (compat=0.10)',
    shape: { size: odd, clusterSize: 64 * KiB },
    seeds: [1, 2, 101],
    count: 400,
    prepare: (dir) => create(dir, 'compat=0.10', odd),
  },
  {
    name: 'v3, 1 GiB (an L2 table boundary at 512 MiB)',
    shape: { size: big, clusterSize: 64 * KiB },
    seeds: [3, 4, 103],
    count: 400,
    prepare: (dir) => create(dir, 'compat=1.1', big),
  },
  {
    name: '512-byte clusters, 1-bit refcounts, 256 MiB (refcount table growth)',
    shape: { size: 256 * MiB, clusterSize: 512, spread: true, maxLen: 384 * KiB },
    seeds: [5, 6, 105],
    count: 400,
    prepare(dir) {
      create(dir, 'cluster_size=512,refcount_bits=1', 256 * MiB);
      // Fill host clusters up to about 127 MiB, just below the 128 MiB the first refcount table covers
      // (64 entries x 2 MiB): the workload then has to grow the table.
      qemuIo(join(dir, START), [`write -P 0x77 ${128 * MiB} ${125 * MiB}`]);
    },
    expectRefcountTableGrowth: true,
  },
  {
    name: '4 KiB clusters, 64-bit refcounts',
    shape: { size: odd, clusterSize: 4 * KiB },
    seeds: [7, 8, 107],
    count: 400,
    prepare(dir) {
      create(dir, 'cluster_size=4k,refcount_bits=64', odd);
      seedData(join(dir, START), odd);
    },
  },
  {
    name: 'extended L2, 32 KiB clusters, 72 MiB (an L2 boundary at 64 MiB)',
    shape: { size: 72 * MiB, clusterSize: 32 * KiB, extendedL2: true },
    seeds: [9, 10, 109],
    count: 400,
    prepare(dir) {
      create(dir, 'cluster_size=32k,extended_l2=on', 72 * MiB);
      seedData(join(dir, START), 72 * MiB);
    },
  },
  {
    name: 'extended L2, 64 KiB clusters',
    shape: { size: odd, clusterSize: 64 * KiB, extendedL2: true },
    seeds: [11, 12, 111],
    count: 400,
    prepare: (dir) => create(dir, 'cluster_size=64k,extended_l2=on', odd),
  },
  {
    name: 'overlay on a raw backing file',
    shape: { size: 8 * MiB, clusterSize: 64 * KiB },
    seeds: [13, 14, 113],
    count: 400,
    prepare(dir) {
      qemuImg(['create', '-q', '-f', 'raw', join(dir, 'base.raw'), String(8 * MiB)]);
      seedData(join(dir, 'base.raw'), 8 * MiB, 'raw');
      create(dir, '', 8 * MiB, ['-b', 'base.raw', '-F', 'raw']);
    },
  },
  {
    name: 'overlay larger than its raw backing file',
    shape: { size: odd, clusterSize: 64 * KiB },
    seeds: [15, 16, 115],
    count: 400,
    prepare(dir) {
      const baseSize = 3 * MiB + 512; // ends inside a cluster of the overlay
      qemuImg(['create', '-q', '-f', 'raw', join(dir, 'base.raw'), String(baseSize)]);
      seedData(join(dir, 'base.raw'), baseSize, 'raw');
      create(dir, '', odd, ['-b', 'base.raw', '-F', 'raw']);
    },
  },
  {
    name: 'overlay (64 KiB clusters) on a qcow2 backing file with 4 KiB clusters',
    shape: { size: 8 * MiB, clusterSize: 64 * KiB },
    seeds: [17, 18, 117],
    count: 400,
    prepare(dir) {
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', join(dir, 'base.qcow2'), String(8 * MiB)]);
      seedData(join(dir, 'base.qcow2'), 8 * MiB);
      qemuIo(join(dir, 'base.qcow2'), ['write -z 1M 256k', 'discard 2M 64k']);
      create(dir, '', 8 * MiB, ['-b', 'base.qcow2', '-F', 'qcow2']);
    },
  },
  {
    // v2 has no zero flag, so QEMU ignores discards here rather than let the backing file show through.
    name: 'v2 overlay on a v2 qcow2 backing file (discard changes nothing)',
    shape: { size: 8 * MiB, clusterSize: 64 * KiB },
    seeds: [27, 28, 127],
    count: 400,
    prepare(dir) {
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', join(dir, 'base.qcow2'), String(8 * MiB)]);
      seedData(join(dir, 'base.qcow2'), 8 * MiB);
      create(dir, 'compat=0.10', 8 * MiB, ['-b', 'base.qcow2', '-F', 'qcow2']);
      // Overlay data over the base's, so a discard that let the base show through would change bytes.
      qemuIo(join(dir, START), ['write -P 0xa1 0 3M', 'write -P 0xa2 5M 2M']);
    },
  },
  {
    name: 'image with an internal snapshot',
    shape: { size: 8 * MiB, clusterSize: 64 * KiB },
    seeds: [19, 20, 119],
    count: 400,
    prepare(dir) {
      create(dir, '', 8 * MiB);
      seedData(join(dir, START), 8 * MiB);
      qemuImg(['snapshot', '-c', 'S', join(dir, START)]);
    },
    snapshot: 'S',
  },
  compressed('zlib'),
  compressed('zstd'),
  {
    name: 'lazy refcounts',
    shape: { size: odd, clusterSize: 64 * KiB },
    seeds: [21, 22, 121],
    count: 400,
    prepare(dir) {
      create(dir, 'lazy_refcounts=on', odd);
      seedData(join(dir, START), odd);
    },
    checkDirty: true,
  },
  {
    name: 'preallocation=metadata',
    shape: { size: odd, clusterSize: 64 * KiB },
    seeds: [23, 24, 123],
    count: 400,
    prepare: (dir) => create(dir, 'preallocation=metadata', odd),
  },
  {
    name: '2 MiB clusters',
    shape: { size: 32 * MiB + 3584, clusterSize: 2 * MiB },
    seeds: [25, 26, 125],
    count: 250,
    prepare(dir) {
      create(dir, 'cluster_size=2M', 32 * MiB + 3584);
      seedData(join(dir, START), 32 * MiB + 3584);
    },
  },
];

/** Header bytes 48-59: refcount_table_offset (u64) and refcount_table_clusters (u32), as hex. */
export function refcountTableField(image: string): string {
  const fd = openSync(image, 'r');
  try {
    const b = Buffer.alloc(12);
    readSync(fd, b, 0, 12, 48);
    return b.toString('hex');
  } finally {
    closeSync(fd);
  }
}

export { START };
