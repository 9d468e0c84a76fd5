import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { seeded } from './harness.js';

const KiB = 1024;

interface Command {
  text: string;
  /** The write's range and pattern (writes never overlap, so each must read back alone). */
  write?: { offset: number; length: number; pattern: number };
}

/** Non-overlapping writes and zero writes of random sizes, a flush every few commands. */
function workload(seed: number, count: number): Command[] {
  const random = seeded(seed);
  const commands: Command[] = [];
  for (let i = 0; i < count; i++) {
    const slot = i * 192 * KiB;
    const offset = slot + Math.floor(random() * 64) * 512;
    const length = (1 + Math.floor(random() * 256)) * 512;
    const pattern = 1 + (i % 250);
    if (random() < 0.1) commands.push({ text: `write -z ${offset} ${length}`, write: { offset, length, pattern: 0 } });
    else commands.push({ text: `write -P ${pattern} ${offset} ${length}`, write: { offset, length, pattern } });
    if (i % 8 === 7) commands.push({ text: 'flush' });
  }
  return commands;
}

/**
 * Runs `qcow io` with the commands and SIGKILLs it once `killAfter` writes have been acknowledged (qemu-io's
 * "wrote" line; stdout is a pipe, written synchronously). Returns how many commands completed: a command has
 * completed when its own line, or the line of any command after it, was printed.
 */
function runAndKill(image: string, commands: Command[], killAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QCOW_CLI, 'io', ...commands.flatMap((c) => ['-c', c.text]), image], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acknowledged = 0;
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      acknowledged += lines.filter((line) => line.startsWith('wrote ')).length;
      if (acknowledged >= killAfter && child.exitCode === null) child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`qcow io was not killed (exit ${code}): ${stderr}`));
      // Map acknowledged writes back to command positions: every command before the last acknowledged write is done.
      let writes = 0;
      let done = 0;
      for (let i = 0; i < commands.length && writes < acknowledged; i++) {
        if (commands[i]!.write !== undefined) writes++;
        done = i + 1;
      }
      resolve(done);
    });
  });
}

describe('crash consistency: SIGKILL of qcow io', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('qcow-sigkill-');
  });
  afterAll(() => s.cleanup());

  for (const [seed, killAfter, options] of [
    [1, 300, 'cluster_size=65536'],
    [2, 700, 'cluster_size=4096,refcount_bits=1'],
    [3, 450, 'lazy_refcounts=on'],
  ] as const) {
    it(`${options}: killed after ${killAfter} acknowledged writes`, async () => {
      const image = s.path(`kill-${seed}.qcow2`);
      const commands = workload(seed, 1200);
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', options, image, String(1200 * 192 * KiB)]);
      const done = await runAndKill(image, commands, killAfter);
      expect(done).toBeLessThan(commands.length);

      // No corruption (leaks are allowed; a dirty lazy-refcount image is judged after its repair).
      const lazy = options.includes('lazy');
      const check = run('qemu-img', ['check', ...(lazy ? ['-r', 'all'] : []), '--output=json', image]);
      const report = JSON.parse(check.stdout) as { corruptions?: number; 'check-errors': number };
      expect(report.corruptions ?? 0, check.stdout + check.stderr).toBe(0);
      expect(report['check-errors'], check.stdout).toBe(0);
      expect([0, 3], `qemu-img check exit ${check.status}: ${check.stdout}${check.stderr}`).toContain(check.status);

      // Every write acknowledged before the last completed flush reads back.
      const lastFlush = commands.slice(0, done).map((c) => c.text).lastIndexOf('flush');
      const durable = commands.slice(0, Math.max(0, lastFlush)).filter((c) => c.write !== undefined);
      expect(durable.length).toBeGreaterThan(killAfter / 2);
      const reads = durable.map(({ write }) => `read -P ${write!.pattern} ${write!.offset} ${write!.length}`);
      const read = run('qemu-io', ['-r', '-f', 'qcow2', ...reads.flatMap((c) => ['-c', c]), image], { timeoutMs: 280_000 });
      expect(read.stdout).not.toMatch(/Pattern verification failed|failed/);
      expect(read.status).toBe(0);
    });
  }
});
