import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, requireTool, scratch, type Scratch } from '@q/test-support';
import { buildBaseImage, type BaseImage, type BaseName } from './base-images.js';
import { ImageBytes } from './image-patch.js';

/**
 * Table-driven hostile-input tests: each case starts from a valid image made by qemu-img (or builds its own
 * files), damages specific bytes, and runs the real `qcow` CLI on the result. Whatever the damage, every command
 * must end cleanly: exactly one line on stderr naming the file and the problem, a non-zero exit, no stack trace,
 * within the time limit, with bounded memory, and the image files untouched.
 */

/** The limits every run must meet. */
export const TIME_LIMIT_MS = 10_000;
export const RSS_LIMIT_KIB = 300 * 1024;
/** A run still going after this is killed (it has already failed the time limit). */
const HARD_KILL_S = 20;

export type CommandName = 'info' | 'info-chain' | 'convert' | 'convert-s1' | 'map' | 'io';

export const OPEN_COMMANDS: CommandName[] = ['info', 'convert', 'map', 'io'];
/** Damage only reached through L2 tables or data: `info` (like qemu-img info) never reads them. */
export const DATA_COMMANDS: CommandName[] = ['convert', 'map', 'io'];
/** Damage inside compressed data: only reading decompresses (`map` reports where it is, not what it holds). */
export const READ_COMMANDS: CommandName[] = ['convert', 'io'];
/** Backing chains: `info` opens the chain only with --backing-chain (as qemu-img). */
export const CHAIN_COMMANDS: CommandName[] = ['info-chain', 'convert', 'map', 'io'];

export interface CaseContext {
  /** The case's own directory; every file in it is checked unchanged after each command. */
  dir: string;
  path(name: string): string;
  base(name: BaseName): BaseImage;
}

export interface HostileCase {
  name: string;
  /** Copy this base image to `img.qcow2` in the case directory, then apply `damage`. */
  base?: BaseName;
  /** Edits the copied bytes in place (or truncates them). */
  damage?: (img: ImageBytes, ctx: CaseContext) => void;
  /** Runs on the saved damaged image (e.g. to extend it sparsely). */
  finish?: (path: string, ctx: CaseContext) => void;
  /** Instead of base + damage: makes the files and returns the path the commands open. */
  build?: (ctx: CaseContext) => string;
  /** Default: OPEN_COMMANDS. */
  commands?: CommandName[];
  /** What the one stderr line must say (besides the file name). */
  expect: RegExp;
  /** The name the error line must contain; default: the basename of the opened path. */
  names?: string;
  /** Pass `-f qcow2` (a damaged magic or an empty file would otherwise probe as raw, as QEMU probes it). */
  forceQcow2?: boolean;
  /** Bytes `qcow io` reads from 0 (default: the base image's virtual size, or 1 MiB). */
  readLength?: number;
}

export interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  peakRssKiB: number | undefined;
}

/** Runs the built CLI under GNU time (peak RSS) and a hard kill, from `cwd`. */
export function runQcow(args: readonly string[], cwd: string): Outcome {
  requireTool('timeout');
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time (GNU time) is required to measure peak memory');
  if (!existsSync(QCOW_CLI)) throw new Error(`${QCOW_CLI} is missing: build the workspace first (pnpm build)`);
  const timeFile = join(tmpdir(), `qcow-hostile-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const env = { ...process.env };
  delete env['QCOW_DEBUG'];
  const started = performance.now();
  const result = spawnSync(
    '/usr/bin/time',
    ['-f', '%M', '-o', timeFile, 'timeout', '-s', 'KILL', String(HARD_KILL_S), process.execPath, QCOW_CLI, ...args],
    { cwd, env, encoding: 'utf8', timeout: (HARD_KILL_S + 10) * 1000, maxBuffer: 64 * 1024 * 1024 },
  );
  const elapsedMs = performance.now() - started;
  let peakRssKiB: number | undefined;
  if (existsSync(timeFile)) {
    const numbers = readFileSync(timeFile, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => /^\d+$/.test(line));
    if (numbers.length > 0) peakRssKiB = Number(numbers[numbers.length - 1]);
    rmSync(timeFile, { force: true });
  }
  return { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '', elapsedMs, peakRssKiB };
}

function commandArgs(command: CommandName, image: string, out: string, forceQcow2: boolean, readLength: number): string[] {
  const f = forceQcow2 ? ['-f', 'qcow2'] : [];
  switch (command) {
    case 'info':
      return ['info', ...f, image];
    case 'info-chain':
      return ['info', '--backing-chain', ...f, image];
    case 'convert':
      return ['convert', ...f, '-O', 'raw', image, out];
    case 'convert-s1':
      return ['convert', ...f, '-l', 'snapshot.name=s1', '-O', 'raw', image, out];
    case 'map':
      return ['map', '--output=json', ...f, image];
    case 'io':
      return ['io', '-r', ...f, '-c', `read 0 ${readLength}`, image];
  }
}

/** sha256 of every file under `dir` (and the listing of directories), to prove nothing was written. */
export function snapshotTree(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (at: string, rel: string): void => {
    for (const entry of readdirSync(at).sort()) {
      const full = join(at, entry);
      const name = rel === '' ? entry : `${rel}/${entry}`;
      const st = lstatSync(full);
      if (st.isSymbolicLink()) result[name] = 'symlink';
      else if (st.isDirectory()) {
        result[name] = `dir:${readdirSync(full).sort().join(',')}`;
        walk(full, name);
      } else result[name] = `${st.size}:${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    }
  };
  walk(dir, '');
  return result;
}

/** Everything wrong with one run of a command on a malformed image (empty when it failed cleanly). */
export function problemsOf(outcome: Outcome, expectMessage: RegExp, name: string): string[] {
  const problems: string[] = [];
  const stderrLines = outcome.stderr.split('\n').filter((line) => line.length > 0);
  if (outcome.elapsedMs >= TIME_LIMIT_MS) problems.push(`took ${Math.round(outcome.elapsedMs)} ms (limit ${TIME_LIMIT_MS} ms)`);
  if (outcome.status === 0) problems.push('exited 0 on a malformed image');
  if (outcome.status === 124 || outcome.status === 137 || outcome.status === -1) problems.push(`killed or hung (status ${outcome.status})`);
  // qemu-io prints a failed command's error on stdout ("read failed: ..."); the contract here is stderr. Say where
  // the error went, and still check what it says.
  const stdoutError = outcome.stdout.split('\n').find((line) => /^\w+ failed: /.test(line));
  if (stderrLines.length !== 1) {
    const where = stderrLines.length === 0 && stdoutError !== undefined ? ' (the error line went to stdout instead)' : '';
    problems.push(`expected exactly 1 line on stderr, got ${stderrLines.length}${where}`);
  }
  const traceLines = `${outcome.stdout}\n${outcome.stderr}`.split('\n').filter((line) => line.startsWith('    at '));
  if (traceLines.length > 0) problems.push(`stack trace printed (${traceLines.length} frames)`);
  if (/internal error/i.test(outcome.stderr) || /internal error/i.test(outcome.stdout)) problems.push('reported as an internal error');
  if (/TypeError|RangeError|ReferenceError|SyntaxError/.test(outcome.stderr + outcome.stdout)) problems.push('a JS exception type leaked into the output');
  const line = stderrLines.length === 1 ? stderrLines[0] : stderrLines.length === 0 ? stdoutError : undefined;
  if (line !== undefined && !line.includes(name)) problems.push(`the error line does not name '${name}'`);
  if (line !== undefined && !expectMessage.test(line)) problems.push(`the error line does not match ${expectMessage}`);
  if (outcome.peakRssKiB === undefined) problems.push('peak RSS not measured');
  else if (outcome.peakRssKiB >= RSS_LIMIT_KIB) problems.push(`peak RSS ${Math.round(outcome.peakRssKiB / 1024)} MiB (limit ${RSS_LIMIT_KIB / 1024} MiB)`);
  return problems;
}

function clip(text: string, max = 1500): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/** Lazily built base images, shared by every case of a file. */
class Bases {
  private s: Scratch | undefined;
  private readonly built = new Map<BaseName, BaseImage>();
  get(name: BaseName): BaseImage {
    this.s ??= scratch('qcow-hostile-base-');
    let base = this.built.get(name);
    if (base === undefined) {
      base = buildBaseImage(this.s, name);
      this.built.set(name, base);
    }
    return base;
  }
  cleanup(): void {
    this.s?.cleanup();
  }
}

/** Registers one describe block per case and one test per command. */
export function hostileSuite(title: string, cases: HostileCase[]): void {
  describe(title, () => {
    const bases = new Bases();
    let root: Scratch;
    beforeAll(() => {
      root = scratch('qcow-hostile-');
    });
    afterAll(() => {
      root?.cleanup();
      bases.cleanup();
    });

    cases.forEach((c, index) => {
      describe(c.name, () => {
        let image = '';
        let dir = '';
        let outDir = '';
        let before: Record<string, string> = {};
        let readLength = 1 << 20;
        beforeAll(() => {
          dir = join(root.dir, `case-${String(index).padStart(2, '0')}`);
          outDir = join(root.dir, `out-${String(index).padStart(2, '0')}`);
          mkdirSync(dir);
          mkdirSync(outDir);
          const ctx: CaseContext = { dir, path: (n) => join(dir, n), base: (n) => bases.get(n) };
          if (c.build !== undefined) {
            image = c.build(ctx);
          } else {
            if (c.base === undefined) throw new Error(`case '${c.name}': needs base or build`);
            const base = bases.get(c.base);
            readLength = base.size;
            const img = new ImageBytes(Buffer.from(base.bytes));
            c.damage?.(img, ctx);
            image = ctx.path('img.qcow2');
            img.save(image);
            c.finish?.(image, ctx);
          }
          if (c.readLength !== undefined) readLength = c.readLength;
          before = snapshotTree(dir);
        });

        for (const command of c.commands ?? OPEN_COMMANDS) {
          it(command, () => {
            const out = join(outDir, `${command}.raw`);
            const args = commandArgs(command, image, out, c.forceQcow2 === true, readLength);
            const outcome = runQcow(args, dir);
            rmSync(out, { force: true });
            const problems = problemsOf(outcome, c.expect, c.names ?? basename(image));
            const after = snapshotTree(dir);
            if (JSON.stringify(after) !== JSON.stringify(before)) problems.push('the image files changed');
            const report = [
              `qcow ${args.join(' ')}`,
              `exit ${outcome.status}, ${Math.round(outcome.elapsedMs)} ms, peak RSS ${outcome.peakRssKiB ?? '?'} KiB`,
              `stderr: ${clip(JSON.stringify(outcome.stderr))}`,
              `stdout: ${clip(JSON.stringify(outcome.stdout))}`,
            ].join('\n');
            if (process.env['HOSTILE_VERBOSE']) console.log(`[${c.name} / ${command}] ${outcome.stderr.trim() || outcome.stdout.trim()}`);
            expect(problems, report).toEqual([]);
          });
        }
      });
    });
  });
}

/** Positive control: an undamaged image runs every command successfully, so failures above mean something. */
export function expectCleanSuccess(args: readonly string[], cwd: string): Outcome {
  const outcome = runQcow(args, cwd);
  expect(outcome.status, `qcow ${args.join(' ')}: ${outcome.stderr}`).toBe(0);
  expect(outcome.stderr).toBe('');
  return outcome;
}

export function fileSize(path: string): number {
  return statSync(path).size;
}
