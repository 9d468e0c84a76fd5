import { spawn } from 'node:child_process';
import { canConnect, QCOW_CLI } from '@q/test-support';

/** A `qcow serve` child on a Unix socket. */
export interface ServeProcess {
  /** The export as QEMU's -drive names it. */
  uri: string;
  pid: number;
  stderr(): string;
  /** SIGTERM (graceful: flush, close, exit 0), then the exit code; SIGKILL after 20 s, which fails the caller. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL now: the crash case. */
  kill(): Promise<void>;
}

/** Starts `qcow serve -k SOCKET ARGS...` and waits (bounded) until it accepts connections. */
export async function startServe(socket: string, args: readonly string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [QCOW_CLI, 'serve', '-k', socket, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let up = false;
  for (let attempt = 0; attempt < 300 && child.exitCode === null; attempt++) {
    if (await canConnect({ path: socket })) {
      up = true;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`qcow serve ${args.join(' ')} did not start: ${stderr}`);
  }
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    uri: `nbd+unix:///?socket=${socket}`,
    pid: child.pid as number,
    stderr: () => stderr,
    stop: async () => {
      if (alive()) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
    kill: async () => {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
  };
}
