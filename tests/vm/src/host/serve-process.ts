import { spawn } from 'node:child_process';
import { canConnect, QCOW_CLI, requireTool } from '@q/test-support';

/** An NBD server child on a Unix socket: `qcow serve`, or `qemu-nbd` as the benchmark's peer. */
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
export function startServe(socket: string, args: readonly string[]): Promise<ServeProcess> {
  return startServer('qcow serve', process.execPath, [QCOW_CLI, 'serve', '-k', socket, ...args], socket);
}

/** Starts `qemu-nbd -k SOCKET ARGS...` the same way (give it -t: without it, it exits when its first client leaves). */
export function startQemuNbd(socket: string, args: readonly string[]): Promise<ServeProcess> {
  requireTool('qemu-nbd');
  return startServer('qemu-nbd', 'qemu-nbd', ['-k', socket, ...args], socket);
}

async function startServer(label: string, command: string, args: readonly string[], socket: string): Promise<ServeProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
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
    throw new Error(`${label} ${args.join(' ')} did not start: ${stderr}`);
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
