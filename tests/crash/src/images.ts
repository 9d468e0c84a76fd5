import { readFileSync } from 'node:fs';
import { createQcow2, defaultCreateOptions, type CreateOptions } from '@q/qcow2';
import { MemoryBlockFile } from '@q/raw';
import { qemuImg, qemuIo, scratch } from '@q/test-support';
import { SECTOR, SectorModel, type GuestOp } from './guest-model.js';
import { seeded, type BaseImage } from './harness.js';

/** A fresh, empty image made by this project's `createQcow2` (QEMU's layout). */
export async function createdBase(size: number, options: Partial<Omit<CreateOptions, 'size'>> = {}): Promise<BaseImage> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'base.qcow2' });
  await createQcow2(file, { ...defaultCreateOptions(size), ...options });
  return { bytes: file.contents().slice(), model: new SectorModel(size) };
}

/** A setup step run by qemu-io / qemu-img before recording: guest ops (writes may be compressed) and snapshots. */
export type SetupStep = (GuestOp & { compressed?: boolean }) | { op: 'snapshot'; name: string } | { op: 'bitmap'; name: string; args?: string[] };

/**
 * An image made and filled by QEMU itself: `qemu-img create -o OPTIONS`, then the setup steps (qemu-io writes,
 * `qemu-img snapshot -c`, `qemu-img bitmap --add`). Returns its bytes with the guest model, and each snapshot's model.
 */
export function qemuBase(size: number, createOptions: string, setup: SetupStep[] = []): BaseImage {
  const dir = scratch('qcow-crash-base-');
  try {
    const path = dir.path('base.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', ...(createOptions === '' ? [] : ['-o', createOptions]), path, String(size)]);
    const model = new SectorModel(size);
    const snapshots: Array<{ name: string; model: SectorModel }> = [];
    let batch: string[] = [];
    const runBatch = (): void => {
      // qemu-io takes many -c commands per run; keep each command line well under the argument limits.
      for (let i = 0; i < batch.length; i += 500) qemuIo(path, batch.slice(i, i + 500));
      batch = [];
    };
    for (const step of setup) {
      switch (step.op) {
        case 'bitmap':
          runBatch();
          qemuImg(['bitmap', '--add', ...(step.args ?? []), path, step.name]);
          break;
        case 'snapshot':
          runBatch();
          qemuImg(['snapshot', '-c', step.name, path]);
          snapshots.push({ name: step.name, model: model.clone() });
          break;
        case 'write':
          batch.push(`write ${step.compressed === true ? '-c ' : ''}-P ${step.pattern} ${step.offset} ${step.length}`);
          model.apply(step);
          break;
        case 'zero':
          batch.push(`write -z ${step.unmap === true ? '-u ' : ''}${step.offset} ${step.length}`);
          model.apply(step);
          break;
        case 'discard':
          batch.push(`discard ${step.offset} ${step.length}`);
          model.apply(step);
          break;
        default:
          throw new Error(`setup cannot ${step.op}`);
      }
    }
    runBatch();
    const bytes = new Uint8Array(readFileSync(path));
    return { bytes, model, snapshots };
  } finally {
    dir.cleanup();
  }
}

export interface RandomWorkloadOptions {
  seed: number;
  /** Guest bytes the ops fall in: [from, to). */
  from?: number;
  to: number;
  clusterSize: number;
  /** Number of data ops (flushes come on top). */
  ops: number;
  /** Longest op, in clusters (default 2). */
  maxClusters?: number;
  /** Share of zero writes and of discards (defaults 0.15 and 0.1). */
  zeroShare?: number;
  discardShare?: number;
  /** A flush after every this many ops, give or take (default 3). */
  flushEvery?: number;
  /** First pattern byte (patterns cycle through 1..255 from here). */
  firstPattern?: number;
  /** Align ops to this (default one sector); partial-cluster ops come from unaligned starts and lengths. */
  align?: number;
}

/** A deterministic mixed workload: writes of every size up to a few clusters, zero writes, discards, flushes. */
export function randomWorkload(o: RandomWorkloadOptions): GuestOp[] {
  const random = seeded(o.seed);
  const from = o.from ?? 0;
  const align = o.align ?? SECTOR;
  const maxBytes = (o.maxClusters ?? 2) * o.clusterSize;
  const ops: GuestOp[] = [];
  let pattern = o.firstPattern ?? 1;
  let sinceFlush = 0;
  const flushEvery = o.flushEvery ?? 3;
  for (let i = 0; i < o.ops; i++) {
    const kind = random();
    const clusterAligned = random() < 0.4;
    const unit = clusterAligned ? o.clusterSize : align;
    const offset = from + Math.floor((random() * (o.to - from - unit)) / unit) * unit;
    const length = Math.min(o.to - offset, Math.max(unit, Math.ceil((random() * maxBytes) / unit) * unit));
    if (kind < (o.zeroShare ?? 0.15)) {
      ops.push({ op: 'zero', offset, length, unmap: random() < 0.5 });
    } else if (kind < (o.zeroShare ?? 0.15) + (o.discardShare ?? 0.1)) {
      ops.push({ op: 'discard', offset, length });
    } else {
      ops.push({ op: 'write', offset, length, pattern });
      pattern = (pattern % 255) + 1;
    }
    sinceFlush++;
    if (sinceFlush >= flushEvery + Math.floor(random() * 3) - 1) {
      ops.push({ op: 'flush' });
      sinceFlush = 0;
    }
  }
  ops.push({ op: 'flush' });
  return ops;
}
