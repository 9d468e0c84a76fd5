import { execFile } from 'node:child_process';
import { requireTool } from '@q/test-support';

export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool asynchronously (so several checks overlap with the in-process work), whatever its exit status. */
export function runAsync(command: string, args: readonly string[], timeoutMs = 120_000): Promise<ToolResult> {
  requireTool(command);
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(new Error(`${command} ${args.join(' ')} did not run: ${error.message}`));
        return;
      }
      resolve({ status: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

/** What `qemu-img check --output=json` says about an image. */
export interface CheckReport {
  status: number;
  corruptions: number;
  leaks: number;
  checkErrors: number;
  /** The raw output (JSON on stdout, messages on stderr), for failure reports. */
  output: string;
}

export async function qemuCheck(path: string, extra: readonly string[] = []): Promise<CheckReport> {
  const result = await runAsync('qemu-img', ['check', ...extra, '--output=json', path]);
  const output = `${result.stdout}${result.stderr}`.trim();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    // Exit 1 (could not check) prints no JSON: the status says it all.
  }
  const count = (key: string): number => (typeof parsed[key] === 'number' ? (parsed[key] as number) : 0);
  return { status: result.status, corruptions: count('corruptions'), leaks: count('leaks'), checkErrors: count('check-errors'), output };
}

/** Human-readable `qemu-img check` (its ERROR lines name what is wrong). */
export async function qemuCheckHuman(path: string, extra: readonly string[] = []): Promise<ToolResult> {
  return runAsync('qemu-img', ['check', ...extra, path]);
}

/** Runs `tasks` with at most `limit` in flight at once. */
export async function runPool<T>(items: readonly T[], limit: number, task: (item: T, index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async (_, worker) => {
    while (next < items.length) {
      const index = next++;
      await task(items[index]!, index, worker);
    }
  });
  await Promise.all(workers);
}
