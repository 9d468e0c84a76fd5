import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { requireTool } from '@q/test-support';

/** A qemu-nbd serving on a Unix socket, started for a comparison, and its stop (by its own pid). */
export interface QemuNbdProcess {
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `qemu-nbd -k SOCKET ARGS` (persistent, so it serves several clients) and waits for its socket. */
export async function startQemuNbd(socket: string, args: readonly string[]): Promise<QemuNbdProcess> {
  requireTool('qemu-nbd');
  const child = spawn('qemu-nbd', ['-k', socket, '-t', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 200 && !existsSync(socket) && child.exitCode === null; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`qemu-nbd did not start: ${stderr}`);
  }
  return {
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
