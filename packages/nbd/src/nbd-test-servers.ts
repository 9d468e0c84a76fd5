// Real NBD servers for the client's tests: qemu-nbd and nbdkit, started on a free port or a Unix socket and killed
// by pid. A missing tool fails the test loudly; nothing here ever skips.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  /** `nbd://127.0.0.1:PORT/EXPORT` or `nbd+unix:///EXPORT?socket=PATH` for the default export. */
  uri: string;
  pid: number;
  stop(): Promise<void>;
}

export type Listen = { port: number } | { socket: string };

/** A TCP port nobody listens on right now (the kernel's pick, released again). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'nbd-client-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `qemu-nbd -t` serving `file` (`-f raw` serves its own bytes, `-f qcow2` the guest's). */
export function startQemuNbd(file: string, listen: Listen, options: { format: string; exportName?: string; readOnly?: boolean }): Promise<RunningServer> {
  // -e: the tests open a second client (qemu-img, nbdcopy) beside ours; qemu-nbd's default is one at a time.
  const args = ['-t', '-e', '8', '-f', options.format, ...(options.readOnly === true ? ['-r'] : [])];
  if (options.exportName !== undefined) args.push('-x', options.exportName);
  args.push(...('port' in listen ? ['-p', String(listen.port), '-b', '127.0.0.1'] : ['-k', listen.socket]), file);
  return startServer('qemu-nbd', args, listen, options.exportName ?? '');
}

/** `nbdkit -f` with a plugin and its arguments, e.g. `['memory', '64M']` or `['--filter=nozero', 'memory', '1M']`. */
export function startNbdkit(listen: Listen, plugin: readonly string[], options: { readOnly?: boolean } = {}): Promise<RunningServer> {
  const where = 'port' in listen ? ['-p', String(listen.port), '--ipaddr', '127.0.0.1'] : ['-U', listen.socket];
  return startServer('nbdkit', ['-f', ...where, ...(options.readOnly === true ? ['-r'] : []), ...plugin], listen, '');
}

async function startServer(tool: string, args: string[], listen: Listen, exportName: string): Promise<RunningServer> {
  const child = spawn(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`${tool} could not start (is it installed?): ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`${tool} exited with ${code} before listening: ${stderr.trim()}`)));
  });
  failed.catch(() => {});
  await Promise.race([waitForListener(listen), failed]);
  const pid = child.pid!;
  const encoded = encodeURIComponent(exportName);
  return {
    uri: 'port' in listen ? `nbd://127.0.0.1:${listen.port}/${encoded}` : `nbd+unix:///${encoded}?socket=${listen.socket}`,
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
      await exited;
    },
  };
}

/** Polls until something accepts connections at `listen` (both servers bind before they serve). */
async function waitForListener(listen: Listen): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = 'port' in listen ? connect(listen.port, '127.0.0.1') : connect(listen.socket);
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens at ${JSON.stringify(listen)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs a tool to completion; a failure throws with its stderr. */
export function run(tool: string, args: readonly string[]): string {
  const result = spawnSync(tool, args, { encoding: 'utf8', timeout: 120_000 });
  if (result.error !== undefined) throw new Error(`${tool} could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** The bytes `source` (a file or an nbd:// URI) holds in `format`, as `qemu-img convert -O raw` gives them. */
export function convertToRaw(source: string, format: string, dir: string): Uint8Array {
  const out = join(dir, `converted-${Math.random().toString(36).slice(2)}.raw`);
  run('qemu-img', ['convert', '-f', format, '-O', 'raw', source, out]);
  const bytes = new Uint8Array(readFileSync(out));
  rmSync(out);
  return bytes;
}

/** Deterministic non-zero-ish bytes, different for every seed. */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + seed * 29 + (i >>> 9)) & 0xff;
  return bytes;
}
