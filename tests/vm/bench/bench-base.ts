import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { qcow } from '@q/test-support';
import { makeExt4, writeBaseTree } from '../src/host/ext4-files.js';
import { CHECKED_MIB, LAYOUT } from './bench-cases.js';

const MiB = 1024 * 1024;

/** The benchmark's base image, and the md5 of its backing region's last CHECKED_MIB (the guest checks what it read). */
export interface BenchBase {
  path: string;
  backingMd5: string;
}

/**
 * One base for the whole run, made as tests/vm makes its own (the same tree of files, `mke2fs -d`, then
 * `qcow convert -O qcow2`), on a bigger disk: random data in the backing region after the ext4, and the write
 * regions left as holes, which convert leaves unallocated. Each boot gets a fresh overlay on it.
 */
export function makeBenchBase(dir: string, backingMiB: number): BenchBase {
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  writeBaseTree(tree);
  const raw = join(dir, 'base.raw');
  makeExt4(tree, raw, LAYOUT.ext4MiB);
  const md5 = createHash('md5');
  const fd = openSync(raw, 'r+');
  try {
    const chunk = Buffer.alloc(MiB);
    for (let i = 0; i < backingMiB; i++) {
      randomFillSync(chunk);
      if (i >= backingMiB - CHECKED_MIB) md5.update(chunk);
      writeSync(fd, chunk, 0, MiB, (LAYOUT.backingAt + i) * MiB);
    }
  } finally {
    closeSync(fd);
  }
  truncateSync(raw, LAYOUT.diskMiB * MiB);
  const path = join(dir, 'base.qcow2');
  const converted = qcow(['convert', '-O', 'qcow2', raw, path], { timeoutMs: 600_000 });
  if (converted.status !== 0) throw new Error(`qcow convert of the benchmark's base failed: ${converted.stderr.trim()}`);
  rmSync(raw);
  rmSync(tree, { recursive: true });
  return { path, backingMd5: md5.digest('hex') };
}
