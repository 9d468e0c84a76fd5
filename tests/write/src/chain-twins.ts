import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { qcow, qemuImg, qemuIo, run, type RunResult, type Scratch } from '@q/test-support';

/**
 * Twin runs for rebase and commit: the same inputs in two directories, qemu-img in one and qcow in the other, with
 * the same arguments and working directory; then qemu-img judges both results side by side.
 */
export interface Twin {
  /** Where qemu-img ran. */
  qemu: string;
  /** Where qcow ran. */
  mine: string;
  theirs: RunResult;
  ours: RunResult;
}

/** Builds the inputs in a fresh directory with qemu-img and qemu-io commands (run with cwd = the directory). */
export interface Setup {
  /** `qemu-img create` arguments, e.g. ['-f', 'qcow2', 'base.qcow2', '4M']. */
  create?: string[][];
  /** qemu-io command lists per image, e.g. [['base.qcow2', 'write -P 1 0 1M']]. */
  io?: Array<[string, ...string[]]>;
  /** Internal snapshots to take after `io`: [image, name]. */
  snapshot?: Array<[string, string]>;
  /** Directories to make first. */
  dirs?: string[];
  /** More io after the snapshots. */
  ioAfter?: Array<[string, ...string[]]>;
}

let counter = 0;

export function prepare(s: Scratch, setup: Setup): string {
  const dir = s.path(`in-${counter++}`);
  mkdirSync(dir);
  for (const sub of setup.dirs ?? []) mkdirSync(join(dir, sub), { recursive: true });
  for (const args of setup.create ?? []) qemuImg(['create', '-q', ...args], { cwd: dir });
  const io = (image: string, commands: string[]): string => qemuIo(image, commands, { cwd: dir, format: image.endsWith('.raw') ? 'raw' : 'qcow2' });
  for (const [image, ...commands] of setup.io ?? []) io(image, commands);
  for (const [image, name] of setup.snapshot ?? []) qemuImg(['snapshot', '-c', name, image], { cwd: dir });
  for (const [image, ...commands] of setup.ioAfter ?? []) io(image, commands);
  return dir;
}

/** Copies `input` twice and runs `args` with qemu-img in one copy and qcow in the other. */
export function twin(s: Scratch, input: string, args: string[]): Twin {
  const qemu = `${input}-qemu`;
  const mine = `${input}-qcow`;
  cpSync(input, qemu, { recursive: true });
  cpSync(input, mine, { recursive: true });
  const theirs = run('qemu-img', args, { cwd: qemu });
  const ours = qcow(args, { cwd: mine, timeoutMs: 120_000 });
  return { qemu, mine, theirs, ours };
}

/** The guest bytes of `image` (relative to `dir`) as qemu-img reads them, as a raw file beside it. */
export function guestRaw(dir: string, image: string, name = `${image.replace(/\W/g, '_')}.guest.raw`): string {
  qemuImg(['convert', '-U', '-O', 'raw', image, name], { cwd: dir });
  return join(dir, name);
}

/** `qemu-img compare` of two images (raw files are given as raw): exit 0 means the same guest content. */
export function sameContent(a: string, b: string, formats: { a?: string; b?: string } = {}): RunResult {
  const args = ['compare', '-U'];
  if (formats.a !== undefined) args.push('-f', formats.a);
  if (formats.b !== undefined) args.push('-F', formats.b);
  return run('qemu-img', [...args, a, b]);
}

type MapEntry = { start: number; length: number; depth: number; present: boolean; zero: boolean; data: boolean };

/**
 * `qemu-img map --output=json` without host offsets, neighbours with the same state merged: the allocation each
 * layer shows, which must match; where the data lies in the file is each engine's own business.
 */
export function mapShape(dir: string, image: string): MapEntry[] {
  const entries = JSON.parse(qemuImg(['map', '-U', '--output=json', image], { cwd: dir })) as MapEntry[];
  const merged: MapEntry[] = [];
  for (const { start, length, depth, present, zero, data } of entries) {
    const last = merged.at(-1);
    if (last && last.start + last.length === start && last.depth === depth && last.present === present && last.zero === zero && last.data === data) last.length += length;
    else merged.push({ start, length, depth, present, zero, data });
  }
  return merged;
}

/** The `qemu-img info --output=json` fields both tools must agree on (not sizes on disk, not the file name). */
export function infoFields(dir: string, image: string): Record<string, unknown> {
  const info = JSON.parse(qemuImg(['info', '-U', '--output=json', image], { cwd: dir })) as Record<string, unknown>;
  const { 'virtual-size': size, 'cluster-size': cluster, format, 'backing-filename': backing, 'backing-filename-format': backingFormat, 'full-backing-filename': full, 'dirty-flag': dirty, snapshots } = info;
  const specific = (info['format-specific'] as { data?: unknown } | undefined)?.data;
  const snapshotNames = (snapshots as Array<{ name: string }> | undefined)?.map((snapshot) => snapshot.name);
  return { size, cluster, format, backing, backingFormat, full, dirty, specific, snapshotNames };
}

/** `qemu-img check` exits 0 with no errors (qcow2 only). */
export function expectClean(dir: string, image: string): void {
  const result = run('qemu-img', ['check', '-U', image], { cwd: dir });
  expect(result.status, `qemu-img check ${image}: ${result.stdout}${result.stderr}`).toBe(0);
}

/**
 * Holds both runs to the same result: same exit code and stdout (stderr with the program name replaced), and for
 * each image named: same guest content, allocation shape, info fields, and a clean check.
 */
export function expectTwins(t: Twin, images: Array<{ name: string; format?: string; backingMissing?: boolean; sameShape?: boolean }>): void {
  expect(t.ours.status, `qcow: ${t.ours.stderr}`).toBe(t.theirs.status);
  expect(t.ours.stdout.replace(/\r/g, '')).toBe(t.theirs.stdout.replace(/\r/g, ''));
  expect(t.ours.stderr.replace(/^qcow:/gm, 'qemu-img:')).toBe(t.theirs.stderr);
  for (const { name, format, backingMissing, sameShape } of images) {
    if (backingMissing === true) {
      // Nothing can open the chain (check and compare neither): only the header changed, so the files must match.
      expect(infoFields(t.mine, name), name).toEqual(infoFields(t.qemu, name));
      expect(sameBytes(join(t.mine, name), join(t.qemu, name)), `${name}: bytes differ from qemu-img's`).toBe(true);
      continue;
    }
    const compared = sameContent(join(t.mine, name), join(t.qemu, name), { a: format, b: format });
    expect(compared.status, `${name}: ${compared.stdout}${compared.stderr}`).toBe(0);
    expect(infoFields(t.mine, name), name).toEqual(infoFields(t.qemu, name));
    if (format !== 'raw') {
      if (sameShape !== false) expect(mapShape(t.mine, name), name).toEqual(mapShape(t.qemu, name));
      expectClean(t.mine, name);
    }
  }
}

/** Whether a file's bytes are unchanged from a saved copy (a refused command must not have written). */
export function sameBytes(a: string, b: string): boolean {
  return Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
}
