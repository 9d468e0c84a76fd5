/**
 * Seeded random qemu-io command lists for the write path: pattern writes, zero writes (with and without unmap),
 * discards, flushes and read-backs, with sizes and offsets chosen to hit the interesting edges (single bytes,
 * sector and cluster sizes, cluster- and L2-table-crossing ranges, the end of the image).
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** A small seeded PRNG (mulberry32): the same seed gives the same commands on every run and machine. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A uniform 32-bit unsigned integer. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [0, n) for n up to 2^53 (two draws, so large images are covered evenly). */
  int(n: number): number {
    if (n <= 1) return 0;
    const r = this.next() * 2 ** 21 + (this.next() >>> 11);
    return r % n;
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

export interface WorkloadShape {
  /** Virtual size of the image (a multiple of 512). */
  size: number;
  clusterSize: number;
  extendedL2?: boolean;
  /** Number of commands (read-backs come on top). */
  count: number;
  /** Largest random length; special sizes (cluster-sized, L2-crossing) may exceed it. */
  maxLen?: number;
  /** Offsets anywhere in the image instead of a few hot windows (which make commands overlap often). */
  spread?: boolean;
}

/** Bytes of guest data one L2 table maps. */
export function l2Coverage(clusterSize: number, extendedL2 = false): number {
  return (clusterSize / (extendedL2 ? 16 : 8)) * clusterSize;
}

interface Window {
  start: number;
  end: number;
}

function windows(shape: WorkloadShape): Window[] {
  const { size } = shape;
  if (shape.spread) return [{ start: 0, end: size }];
  const out: Window[] = [{ start: 0, end: Math.min(size, 4 * MiB) }];
  const l2 = l2Coverage(shape.clusterSize, shape.extendedL2);
  // Around the first few L2 table boundaries inside the image.
  for (let b = l2, n = 0; b < size && n < 3; b += l2, n += 1) {
    out.push({ start: Math.max(0, b - 512 * KiB), end: Math.min(size, b + 512 * KiB) });
  }
  out.push({ start: Math.max(0, size - 1 * MiB), end: size }); // the tail, often a partial cluster
  return out;
}

function length(rng: Rng, shape: WorkloadShape): number {
  const c = shape.clusterSize;
  const maxLen = shape.maxLen ?? 320 * KiB;
  const roll = rng.int(100);
  let len: number;
  if (roll < 35) {
    const special = [1, 511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, c - 1, c, c + 1, 2 * c + 512, 3 * c - 7];
    if (shape.extendedL2) special.push(c / 32, c / 32 + 1, 3 * (c / 32) - 1);
    len = rng.pick(special);
  } else if (roll < 50) {
    len = 512 * rng.range(1, Math.max(1, Math.floor(maxLen / 512)));
  } else if (roll < 75) {
    len = rng.range(1, 8 * KiB);
  } else {
    len = rng.range(1, maxLen);
  }
  return Math.max(1, Math.min(len, shape.size, 4 * MiB));
}

function offset(rng: Rng, shape: WorkloadShape, len: number): number {
  const { size, clusterSize: c } = shape;
  const w = rng.pick(windows(shape));
  const last = Math.max(w.start, Math.min(w.end, size) - len); // highest start that keeps the range inside
  const roll = rng.int(100);
  let off: number;
  const boundaryIn = (unit: number): number => {
    const first = Math.ceil((w.start + 1) / unit) * unit;
    const count = Math.max(1, Math.floor((w.end - 1 - first) / unit) + 1);
    return first + unit * rng.int(count);
  };
  if (roll < 35) {
    off = rng.range(w.start, last);
  } else if (roll < 55) {
    off = Math.floor(rng.range(w.start, last) / c) * c; // cluster aligned
  } else if (roll < 75) {
    const b = boundaryIn(c); // crossing a cluster boundary
    off = len > 1 ? b - rng.range(1, len - 1) : b;
  } else if (roll < 85) {
    const l2 = l2Coverage(c, shape.extendedL2);
    const b = l2 < size ? boundaryIn(l2) : boundaryIn(c); // crossing an L2 table boundary when the image has one
    off = len > 1 ? b - rng.range(1, len - 1) : b;
  } else if (roll < 93) {
    off = size - len; // ends exactly at the end of the image
  } else {
    const unit = shape.extendedL2 ? c / 32 : 512;
    off = Math.floor(rng.range(w.start, last) / unit) * unit;
  }
  return Math.max(0, Math.min(off, size - len));
}

/** A list of `count` qemu-io commands (plus read-backs); the same (seed, shape) always gives the same list. */
export function workload(seed: number, shape: WorkloadShape): string[] {
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < shape.count; i += 1) {
    const roll = rng.int(100);
    if (roll < 5) {
      out.push('flush');
      continue;
    }
    const len = length(rng, shape);
    const off = offset(rng, shape, len);
    if (roll < 52) {
      const pattern = rng.int(256);
      out.push(`write -P ${pattern} ${off} ${len}`);
      if (rng.chance(0.15)) out.push(`read -P ${pattern} ${off} ${len}`);
    } else if (roll < 66) {
      out.push(`write -z ${off} ${len}`);
      if (rng.chance(0.1)) out.push(`read -P 0 ${off} ${len}`);
    } else if (roll < 80) {
      out.push(`write -z -u ${off} ${len}`);
      if (rng.chance(0.1)) out.push(`read -P 0 ${off} ${len}`);
    } else {
      out.push(`discard ${off} ${len}`);
    }
  }
  return out;
}

/** Splits a command list into `parts` consecutive batches of near-equal size (for reopen tests). */
export function batches(commands: readonly string[], parts: number): string[][] {
  const out: string[][] = [];
  const per = Math.ceil(commands.length / parts);
  for (let i = 0; i < commands.length; i += per) out.push(commands.slice(i, i + per));
  return out;
}
