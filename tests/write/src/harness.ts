import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { batches, qcow, qemuImg, qemuRaw, run, type Scratch, sha256File, workload } from '@q/test-support';
import { refcountTableField, START, type WriteConfig } from './configs.js';

/** Runs one random workload with qemu-io on one copy and `qcow io` on another, then holds qemu-img to judge. */

/** qemu-io output without the timing lines, which differ from run to run. */
export function ioLines(out: string): string[] {
  return out.split('\n').filter((l) => l !== '' && !/ ops; .*ops\/sec\)$/.test(l));
}

/** Runs `qcow io` (read-write) with commands; the process must succeed. Returns its stdout. */
export function qcowIo(image: string, commands: readonly string[], extra: readonly string[] = []): string {
  const r = qcow(['io', ...extra, '-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), image], { cwd: '/', timeoutMs: 280_000 });
  if (r.status !== 0) {
    const tail = r.stdout.trim().split('\n').slice(-3).join(' | ');
    expect.fail(`qcow io on ${image} exited ${r.status}: ${r.stderr.trim() || tail}`);
  }
  return r.stdout;
}

export function dirtyFlag(image: string): boolean {
  const info = JSON.parse(qemuImg(['info', '--output=json', '-U', image])) as Record<string, unknown>;
  return info['dirty-flag'] === true;
}

const prepared = new Map<string, string>();

/** The starting directory of a configuration, built once per test file and copied for each run. */
function startDir(s: Scratch, cfg: WriteConfig, index: number): string {
  let dir = prepared.get(cfg.name);
  if (!dir) {
    dir = s.path(`start-${index}`);
    mkdirSync(dir);
    cfg.prepare(dir);
    prepared.set(cfg.name, dir);
  }
  return dir;
}

async function snapshotSha(s: Scratch, image: string, name: string, tag: string): Promise<string> {
  const out = s.path(`snap-${tag}.raw`);
  qemuRaw(image, out, ['-U', '-l', `snapshot.name=${name}`]);
  return sha256File(out);
}

export interface RunOptions {
  /** Split the commands into this many `qcow io` runs (each reopens the image). */
  parts: number;
}

export async function runWorkload(s: Scratch, cfg: WriteConfig, index: number, seed: number, options: RunOptions): Promise<void> {
  const from = startDir(s, cfg, index);
  const dir = s.path(`run-${index}-${seed}-${options.parts}`);
  cpSync(from, dir, { recursive: true });
  const start = join(dir, START);
  const mine = join(dir, 'qcow.qcow2');
  const theirs = join(dir, 'qemu.qcow2');
  cpSync(start, mine);
  cpSync(start, theirs);
  const commands = workload(seed, { ...cfg.shape, count: cfg.count });
  const before = cfg.snapshot ? await snapshotSha(s, start, cfg.snapshot, `${index}-${seed}-${options.parts}-start`) : '';

  const q = run('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), theirs], { cwd: dir, timeoutMs: 280_000 });
  expect(q.status, `qemu-io failed (the workload itself is wrong): ${q.stderr}${q.stdout.slice(-500)}`).toBe(0);

  let mineOut = '';
  for (const batch of batches(commands, options.parts)) {
    mineOut += qcowIo(mine, batch);
    if (cfg.checkDirty) expect(dirtyFlag(mine), 'dirty flag set after qcow io exited').toBe(false);
  }

  const cmp = run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', theirs, mine], { cwd: dir });
  expect(cmp.status, `qemu-img compare (seed ${seed}): ${cmp.stdout.trim()} ${cmp.stderr.trim()}`).toBe(0);

  const check = run('qemu-img', ['check', '-f', 'qcow2', mine], { cwd: dir });
  expect(check.status, `qemu-img check of the qcow-written image (seed ${seed}):\n${check.stdout}${check.stderr}`).toBe(0);

  if (cfg.snapshot) {
    const after = await snapshotSha(s, mine, cfg.snapshot, `${index}-${seed}-${options.parts}-qcow`);
    expect(after, `snapshot ${cfg.snapshot} content changed by qcow io`).toBe(before);
  }
  if (cfg.expectRefcountTableGrowth) {
    expect(refcountTableField(mine), 'refcount table offset/size in the header did not change').not.toBe(refcountTableField(start));
  }
  expect.soft(ioLines(mineOut), 'qcow io output lines differ from qemu-io').toEqual(ioLines(q.stdout));
}
