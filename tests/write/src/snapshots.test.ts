import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';

/**
 * Internal snapshots made, applied and deleted by `qcow snapshot` and by `qemu-img snapshot`, each judged by the
 * other: qemu-img check clean (no leaks), the same list, snapshot contents as they were when taken, and the same
 * guest data whichever tool did the operation.
 */
interface SnapshotConfig {
  name: string;
  create: string[];
  size: string;
  /** Files the image needs beside it (a backing file). */
  prepare?(dir: string): void;
  /** Writes before the first snapshot, between the two, and after the second (qemu-io commands). */
  writes: [string[], string[], string[]];
  /** A resize between the two snapshots. */
  resize?: string;
}

const configs: SnapshotConfig[] = [
  {
    name: '64 KiB clusters',
    create: [],
    size: '16M',
    writes: [['write -P 1 0 1M', 'write -P 2 5M 100k'], ['write -P 3 512k 64k', 'write -z 5M 64k'], ['write -P 4 0 4k', 'discard 1M 1M']],
  },
  {
    name: 'v2 (compat=0.10)',
    create: ['-o', 'compat=0.10'],
    size: '8M',
    writes: [['write -P 1 0 200k', 'write -P 2 3M 64k'], ['write -P 3 64k 8k', 'write -z 3M 64k'], ['write -P 4 1M 4k']],
  },
  {
    name: '4 KiB clusters, 8-bit refcounts',
    create: ['-o', 'cluster_size=4k,refcount_bits=8'],
    size: '8M',
    writes: [['write -P 1 0 300k', 'write -P 2 3M 8k'], ['write -P 3 100k 5k', 'write -P 5 6M 64k'], ['write -P 4 0 4k']],
  },
  {
    name: 'extended L2',
    create: ['-o', 'extended_l2=on'],
    size: '16M',
    writes: [['write -P 1 0 10k', 'write -P 2 1M 64k'], ['write -P 3 4k 2k', 'write -z 1M 8k'], ['write -P 4 2M 4k']],
  },
  {
    name: 'compressed clusters',
    create: ['-o', 'cluster_size=4k'],
    size: '4M',
    // The middle writes go through `qcow io` (no compressed writes): partial writes over compressed clusters.
    writes: [['write -c -P 1 0 4k', 'write -c -P 2 4k 4k', 'write -P 3 64k 4k'], ['write -P 5 0 2k', 'write -P 6 8k 1k'], ['write -c -P 7 12k 4k']],
  },
  {
    name: 'overlay on a raw backing file',
    create: ['-b', 'back.raw', '-F', 'raw'],
    size: '4M',
    prepare: (dir) => writeFileSync(join(dir, 'back.raw'), Buffer.alloc(4 << 20, 0x5a)),
    writes: [['write -P 1 64k 4k'], ['write -P 2 1M 64k', 'write -z 2M 64k'], ['write -P 3 64k 64k']],
  },
  {
    name: 'a snapshot taken before a resize',
    create: [],
    size: '4M',
    writes: [['write -P 1 0 1M'], ['write -P 2 5M 64k'], ['write -P 3 0 4k']],
    resize: '8M',
  },
];

let s: Scratch;
beforeAll(() => {
  s = scratch('write-snapshots-');
});
afterAll(() => s.cleanup());

/**
 * A digest of the guest as QEMU reads it. qemu-img convert -l pads a snapshot taken before a resize to the
 * current size with zeros, so trailing zero sectors are left out of the digest.
 */
function guestSha(dir: string, image: string, snapshot?: string): string {
  const out = join(dir, `guest-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg(['convert', '-U', ...(snapshot ? ['-l', `snapshot.name=${snapshot}`] : []), '-O', 'raw', image, out], { cwd: dir });
  const bytes = readFileSync(out);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return createHash('sha256').update(bytes.subarray(0, end)).digest('hex');
}

function virtualSize(dir: string, image: string): number {
  return (JSON.parse(qemuImg(['info', '--output=json', '-U', image], { cwd: dir })) as { 'virtual-size': number })['virtual-size'];
}

function checkClean(dir: string, image: string): void {
  const check = run('qemu-img', ['check', image], { cwd: dir });
  expect(check.status, `qemu-img check ${image}:\n${check.stdout}${check.stderr}`).toBe(0);
}

function snapshotWith(tool: 'qcow' | 'qemu', dir: string, args: string[]): void {
  const r = tool === 'qcow' ? qcow(['snapshot', ...args], { cwd: dir }) : run('qemu-img', ['snapshot', ...args], { cwd: dir });
  expect(r.status, `${tool} snapshot ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** Lists without the date column (taken at different times by the two tools). */
function listing(dir: string, image: string): string[] {
  return qemuImg(['snapshot', '-l', '-U', image], { cwd: dir })
    .split('\n')
    .map((line) => line.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'DATE'));
}

describe('internal snapshots, qcow and qemu-img interchangeably', () => {
  configs.forEach((cfg, index) => {
    for (const maker of ['qcow', 'qemu'] as const) {
      const other = maker === 'qcow' ? 'qemu' : 'qcow';
      it(`${cfg.name}: made by ${maker}, applied and deleted by both`, () => {
        const dir = s.path(`${index}-${maker}`);
        mkdirSync(dir);
        cfg.prepare?.(dir);
        qemuImg(['create', '-q', '-f', 'qcow2', ...cfg.create, 'img.qcow2', cfg.size], { cwd: dir });
        qemuIo('img.qcow2', cfg.writes[0], { cwd: dir });
        const atS1 = guestSha(dir, 'img.qcow2');
        snapshotWith(maker, dir, ['-c', 's1', 'img.qcow2']);
        checkClean(dir, 'img.qcow2');
        if (cfg.resize !== undefined) qemuImg(['resize', 'img.qcow2', cfg.resize], { cwd: dir });
        // Writes after a snapshot copy on write: its content never changes.
        const w = qcow(['io', ...cfg.writes[1].flatMap((c) => ['-c', c]), 'img.qcow2'], { cwd: dir });
        expect(w.status, w.stderr).toBe(0);
        expect(guestSha(dir, 'img.qcow2', 's1')).toBe(atS1);
        const atS2 = guestSha(dir, 'img.qcow2');
        snapshotWith(maker, dir, ['-c', 's2', 'img.qcow2']);
        qemuIo('img.qcow2', cfg.writes[2], { cwd: dir });
        checkClean(dir, 'img.qcow2');
        expect(guestSha(dir, 'img.qcow2', 's1')).toBe(atS1);
        expect(guestSha(dir, 'img.qcow2', 's2')).toBe(atS2);
        const list = listing(dir, 'img.qcow2');
        expect(list.slice(2).map((line) => line.split(/\s+/).slice(0, 2))).toEqual([['1', 's1'], ['2', 's2'], ['']]);

        // Apply s1 with each tool on a copy: the same guest data, both clean, sizes as the snapshot recorded.
        for (const tool of ['qcow', 'qemu'] as const) copyFileSync(join(dir, 'img.qcow2'), join(dir, `apply-${tool}.qcow2`));
        snapshotWith(maker, dir, ['-a', 's1', `apply-${maker}.qcow2`]);
        snapshotWith(other, dir, ['-a', 's1', `apply-${other}.qcow2`]);
        for (const tool of ['qcow', 'qemu'] as const) {
          checkClean(dir, `apply-${tool}.qcow2`);
          expect(guestSha(dir, `apply-${tool}.qcow2`), `guest after ${tool} applied s1`).toBe(atS1);
        }
        expect(virtualSize(dir, 'apply-qcow.qcow2')).toBe(virtualSize(dir, 'apply-qemu.qcow2'));

        // Delete s1 with each tool on a copy: clean (no leaks), s2 intact, the same active data.
        for (const tool of ['qcow', 'qemu'] as const) copyFileSync(join(dir, 'img.qcow2'), join(dir, `delete-${tool}.qcow2`));
        const active = guestSha(dir, 'img.qcow2');
        for (const tool of ['qcow', 'qemu'] as const) {
          snapshotWith(tool, dir, ['-d', 's1', `delete-${tool}.qcow2`]);
          checkClean(dir, `delete-${tool}.qcow2`);
          expect(guestSha(dir, `delete-${tool}.qcow2`, 's2')).toBe(atS2);
          expect(guestSha(dir, `delete-${tool}.qcow2`)).toBe(active);
          expect(listing(dir, `delete-${tool}.qcow2`).slice(2).map((line) => line.split(/\s+/).slice(0, 2))).toEqual([['2', 's2'], ['']]);
        }
        // Deleting the last one too leaves a clean image with no snapshot table, and freed clusters get reused.
        snapshotWith('qcow', dir, ['-d', 's2', 'delete-qcow.qcow2']);
        checkClean(dir, 'delete-qcow.qcow2');
        expect(qemuImg(['snapshot', '-l', 'delete-qcow.qcow2'], { cwd: dir })).toBe('');
      });
    }
  });
});
