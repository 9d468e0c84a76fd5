import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { canConnect, QCOW_CLI } from '@q/test-support';

/** A `qcow serve` child process and how to reach it. */
export interface ServeProcess {
  child: ChildProcess;
  /** An NBD URI for libnbd and qemu (`nbd://127.0.0.1:PORT` or `nbd+unix:///?socket=PATH`). */
  uri: string;
  /** Where to connect a raw socket. */
  address: { port: number } | { path: string };
  stderr(): string;
  /** SIGTERM, then the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
  /**
   * The exit code once the server ends by itself, as it does without -t after its last client (SIGKILL and null
   * after 30 s). Not stop(): a SIGTERM sent while Node is already tearing the process down kills it by signal.
   */
  exited(): Promise<number | null>;
}

/** A TCP port that was free a moment ago (the kernel picks it; we release it for the server to take). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}


/**
 * Starts `qcow serve ARGS` on a Unix socket (`socket` given) or a free TCP port, and waits until it accepts
 * connections. A probe connection that closes at once is what a garbage client looks like, so this also shows
 * the server shrugging one off.
 */
export async function startServe(args: readonly string[], where: { socket: string } | 'tcp'): Promise<ServeProcess> {
  const port = where === 'tcp' ? await freePort() : 0;
  const address = where === 'tcp' ? { port } : { path: where.socket };
  const listen = where === 'tcp' ? ['-p', String(port)] : ['-k', where.socket];
  const child = spawn(process.execPath, [QCOW_CLI, 'serve', ...listen, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let up = false;
  for (let attempt = 0; attempt < 200 && child.exitCode === null; attempt++) {
    if (await canConnect(address)) {
      up = true;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`qcow serve did not start: ${stderr}`);
  }
  const uri = where === 'tcp' ? `nbd://127.0.0.1:${port}` : `nbd+unix:///?socket=${where.socket}`;
  return {
    child,
    uri,
    address,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    exited: async () => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
