import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { canConnect, QCOW_CLI, requireTool } from '@q/test-support';

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `qcow` command with extra environment (NODE_EXTRA_CA_CERTS for an HTTPS server of the test). */
export function qcowWith(env: Record<string, string>, args: readonly string[], cwd?: string): CliResult {
  const result = spawnSync(process.execPath, [QCOW_CLI, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** A server process of the test (`qcow serve`, qemu-nbd, nbdkit), stopped by its pid. */
export interface ServerProcess {
  port: number;
  uri: string;
  stop(): Promise<void>;
}

/** Starts `command args` (which must listen on `port`) and waits until it accepts connections. */
export async function startServer(command: string, args: readonly string[], port: number, env: Record<string, string> = {}): Promise<ServerProcess> {
  if (command !== process.execPath) requireTool(command);
  const child: ChildProcess = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}: ${stderr.trim()}`);
    if (await canConnect({ port })) {
      return {
        port,
        uri: `nbd://127.0.0.1:${port}/`,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${command} did not listen on port ${port}: ${stderr.trim()}`);
}

/** `qcow serve` of `image` with `flags` on a free port. */
export async function serveWithQcow(image: string, flags: readonly string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  return startServer(process.execPath, [QCOW_CLI, 'serve', ...flags, '-t', '-b', '127.0.0.1', '-p', String(port), image], port, env);
}
