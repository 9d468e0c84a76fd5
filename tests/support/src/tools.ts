import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The `qcow` bin; tests run the real command, as users do. */
export const QCOW_CLI = join(repoRoot, 'packages', 'cli', 'bin', 'qcow.cjs');

/** The program the bin runs, there once the workspace is built. */
const QCOW_PROGRAM = join(repoRoot, 'packages', 'cli', 'dist', 'qcow.cjs');

/** Absolute path of a file under the repository root. */
export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

const checked = new Set<string>();

/**
 * Fails loudly (never skips) when an oracle is missing: a test that cannot compare against QEMU must not pass.
 * `.ci/run` installs qemu-utils, libnbd-bin, fio, nbdkit, zstd and gnutls-bin.
 */
export function requireTool(tool: string): void {
  if (checked.has(tool)) return;
  const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(`required test oracle '${tool}' is not installed (install qemu-utils, libnbd-bin, fio, nbdkit, zstd, gnutls-bin, strace; see .ci/run)`);
  }
  checked.add(tool);
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its exit status and output, whatever the status. */
export function run(command: string, args: readonly string[], options: { cwd?: string; input?: string | Uint8Array; timeoutMs?: number } = {}): RunResult {
  requireTool(command);
  const result: SpawnSyncReturns<string> = spawnSync(command, args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a command that must succeed; a failure throws with its stderr. */
export function runOk(command: string, args: readonly string[], options: { cwd?: string; input?: string | Uint8Array } = {}): string {
  const result = run(command, args, options);
  if (result.status !== 0) {
    // qemu-io reports failed commands on stdout, so show its tail when stderr is empty.
    const said = result.stderr.trim() || result.stdout.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${said}`);
  }
  return result.stdout;
}

export function qemuImg(args: readonly string[], options?: { cwd?: string }): string {
  return runOk('qemu-img', args, options);
}

/** qemu-io with `-c` commands; output of each command is dropped unless asked for. */
export function qemuIo(image: string, commands: readonly string[], options: { format?: string; cwd?: string } = {}): string {
  const args = ['-f', options.format ?? 'qcow2', ...commands.flatMap((c) => ['-c', c]), image];
  return runOk('qemu-io', args, options);
}

/** Runs the built `qcow` CLI. */
export function qcow(args: readonly string[], options: { cwd?: string; input?: string | Uint8Array; timeoutMs?: number } = {}): RunResult {
  if (!existsSync(QCOW_PROGRAM)) throw new Error(`${QCOW_PROGRAM} is missing: build the workspace first (pnpm build)`);
  return run(process.execPath, [QCOW_CLI, ...args], options);
}

/** Runs a command whatever its status, keeping stdout as bytes (for binary output such as `convert ... -`). */
export function runBytes(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): { status: number; stdout: Buffer; stderr: string } {
  requireTool(command);
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
}

/** Reads a file's bytes through a command's stdout (binary-safe). */
export function runBinary(command: string, args: readonly string[]): Buffer {
  requireTool(command);
  return execFileSync(command, args, { maxBuffer: 1024 * 1024 * 1024 });
}
