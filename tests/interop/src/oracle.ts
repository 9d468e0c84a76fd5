import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { expect } from 'vitest';
import { qcow, qemuImg, qemuRaw, run, sha256File, type Scratch } from '@q/test-support';

/** Shared helpers for the interop suite: raw images through both programs, compared byte for byte. */

let serial = 0;
function outName(s: Scratch, tag: string): string {
  serial += 1;
  return s.path(`out-${process.pid}-${serial}-${tag}.raw`);
}

export interface RawCompare {
  /** Extra qemu-img convert arguments placed before `-O raw` (e.g. `-f`, `-l snapshot.name=S`). */
  qemuArgs?: readonly string[];
  /** Extra qcow convert arguments placed before `-O raw`. */
  qcowArgs?: readonly string[];
  /** What qcow reads, when it differs from the image path (e.g. `img@snap`). */
  qcowSource?: string;
  /** Working directory of qcow; defaults to `/` so that nothing depends on the caller's directory. */
  qcowCwd?: string;
  /** Working directory of qemu-img. */
  qemuCwd?: string;
}

/** `qemu-img convert -O raw` of an image, and the sha256 of the result. */
export async function qemuRawHash(s: Scratch, image: string, args: readonly string[] = [], cwd?: string): Promise<{ path: string; sha: string; size: number }> {
  const path = outName(s, 'qemu');
  if (cwd === undefined) qemuRaw(image, path, args);
  else qemuImg(['convert', ...args, '-O', 'raw', image, path], { cwd });
  return { path, sha: await sha256File(path), size: statSync(path).size };
}

/** `qcow convert -O raw` of a source; the command must succeed. */
export async function qcowRawHash(s: Scratch, source: string, args: readonly string[] = [], cwd = '/'): Promise<{ path: string; sha: string; size: number }> {
  const path = outName(s, 'qcow');
  const r = qcow(['convert', ...args, '-O', 'raw', source, path], { cwd });
  expect(r.status, `qcow convert ${[...args, source].join(' ')} failed: ${r.stderr.trim()}`).toBe(0);
  return { path, sha: await sha256File(path), size: statSync(path).size };
}

/** Where two files first differ, as `cmp` says it (for failure messages). */
export function firstDifference(a: string, b: string): string {
  const r = run('cmp', [a, b]);
  return (r.stdout + r.stderr).trim() || 'identical';
}

/** Asserts that qcow's raw output of an image equals qemu-img's, byte for byte. */
export async function expectSameRaw(s: Scratch, image: string, options: RawCompare = {}): Promise<string> {
  const q = await qemuRawHash(s, image, options.qemuArgs ?? [], options.qemuCwd);
  const c = await qcowRawHash(s, options.qcowSource ?? image, options.qcowArgs ?? [], options.qcowCwd ?? '/');
  expect(c.size, `raw size of ${image}`).toBe(q.size);
  if (c.sha !== q.sha) expect.fail(`${image}: qcow and qemu-img raw differ: ${firstDifference(q.path, c.path)}`);
  return q.sha;
}

/** A deterministic pseudo-random generator (xorshift32), so the data is the same on every run. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * A raw file with mixed content in 4 KiB pieces: random (incompressible), text (compressible), zeros, and a
 * repeated byte; good input for compressed images.
 */
export function writeMixedRaw(path: string, size: number, seed = 1): string {
  const next = prng(seed);
  const piece = 4096;
  const buf = Buffer.alloc(size);
  const words = ['qcow2 ', 'cluster ', 'refcount ', 'snapshot ', 'backing ', 'zlib ', 'zstd ', 'L2 table '];
  for (let off = 0; off < size; off += piece) {
    const kind = next() % 4;
    const end = Math.min(size, off + piece);
    if (kind === 0) for (let i = off; i < end; i += 4) buf.writeUInt32LE(next(), i);
    else if (kind === 1) {
      let i = off;
      while (i < end) i += buf.write(words[next() % words.length]!, i, end - i, 'latin1');
    } else if (kind === 3) buf.fill(next() & 0xff, off, end);
  }
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, buf);
  } finally {
    closeSync(fd);
  }
  return path;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Human sizes in qemu-io commands (`64k`, `2M`); plain bytes otherwise. */
export function sz(bytes: number): string {
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  if (bytes % KiB === 0) return `${bytes / KiB}k`;
  return String(bytes);
}

/** qemu-io output without the timing lines, which differ from run to run. */
export function ioLines(out: string): string[] {
  return out.split('\n').filter((l) => l !== '' && !/ ops; .*ops\/sec\)$/.test(l));
}

/** Parsed JSON with every `actual-size` key removed, at any depth. */
export function withoutActualSize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutActualSize);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'actual-size') out[k] = withoutActualSize(v);
    return out;
  }
  return value;
}
