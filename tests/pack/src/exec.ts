import { spawn } from 'node:child_process';

export interface ExecResult {
  status: number;
  output: string;
}

/**
 * Runs a command without blocking the test worker (an npm install takes seconds; spawnSync would starve vitest's
 * worker-to-runner messages), and returns its exit status with stdout and stderr interleaved, for messages.
 */
export function exec(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ status: code ?? (signal === null ? -1 : 128), output }));
  });
}

/** Runs a command that must succeed; a failure throws with everything it printed. */
export async function execOk(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const result = await exec(command, args, options);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} (in ${options.cwd}) exited ${result.status}:\n${result.output}`);
  return result.output;
}
