import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { canConnect, QCOW_CLI, run } from '@q/test-support';

/**
 * What a probe did: opened the image, or was refused with this lock message, or failed otherwise (the tools word
 * other failures differently; the first line is kept after a '|' for the test's report, not compared).
 */
export type Verdict = 'ok' | `locked: ${string}` | `error|${string}`;

/** The part of a verdict two tools must agree on. */
export function comparable(verdict: Verdict): string {
  return verdict.startsWith('error|') ? 'error' : verdict;
}

/** One thing a user does to an image, as QEMU's tools do it and as `qcow` does it. */
export interface Probe {
  name: string;
  /** Only for raw files (it would overwrite a qcow2 image with raw bytes). */
  rawOnly?: boolean;
  qemu(image: string, scratch: (name: string) => string): Promise<Verdict>;
  qcow(image: string, scratch: (name: string) => string): Promise<Verdict>;
}

/**
 * The lock message in a tool's output, without the tool's name: 'Failed to get shared "write" lock'. Tools word
 * the rest differently (qemu-nbd says "Failed to blk_new_open"), so the verdict keeps only the lock itself.
 */
export function verdictOf(status: number, output: string): Verdict {
  if (status === 0) return 'ok';
  const lock = /Failed to get (shared )?"[^"]+" lock/.exec(output);
  if (lock !== null) return `locked: ${lock[0]}`;
  return `error|${output.trim().split('\n')[0] ?? ''}`;
}

function command(tool: string, args: string[]): Promise<Verdict> {
  const result = run(tool, args, { timeoutMs: 60_000 });
  return Promise.resolve(verdictOf(result.status, result.stderr + result.stdout));
}

function qcowCommand(args: string[]): Promise<Verdict> {
  return command(process.execPath, [QCOW_CLI, ...args]);
}

/**
 * Starts a server; 'ok' once an NBD client (nbdinfo) completes a handshake with it, a verdict from its output
 * when it exits first. A bare connect is not enough: qemu-nbd listens before it opens the image.
 */
async function serverVerdict(tool: string, args: string[], socket: string): Promise<Verdict> {
  // A server killed by the last probe leaves its socket file behind.
  rmSync(socket, { force: true });
  const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  try {
    for (let attempt = 0; attempt < 400; attempt++) {
      if (child.exitCode !== null) return verdictOf(await exited, output);
      if ((await canConnect(socket)) && run('nbdinfo', ['--size', `nbd+unix:///?socket=${socket}`], { timeoutMs: 30_000 }).status === 0) return 'ok';
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return `error|${tool} neither listened nor exited`;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
}


export const PROBES: Probe[] = [
  {
    name: 'info',
    qemu: (image) => command('qemu-img', ['info', image]),
    qcow: (image) => qcowCommand(['info', image]),
  },
  {
    name: 'info -U',
    qemu: (image) => command('qemu-img', ['info', '-U', image]),
    qcow: (image) => qcowCommand(['info', '-U', image]),
  },
  {
    name: 'read (io -r)',
    qemu: (image) => command('qemu-io', ['-r', '-c', 'read 0 512', image]),
    qcow: (image) => qcowCommand(['io', '-r', '-c', 'read 0 512', image]),
  },
  {
    name: 'read beside a writer (io -r -U)',
    qemu: (image) => command('qemu-io', ['-r', '-U', '-c', 'read 0 512', image]),
    qcow: (image) => qcowCommand(['io', '-r', '-U', '-c', 'read 0 512', image]),
  },
  {
    name: 'write (io)',
    qemu: (image) => command('qemu-io', ['-c', 'write -P 0x11 4096 512', image]),
    qcow: (image) => qcowCommand(['io', '-c', 'write -P 0x22 4096 512', image]),
  },
  {
    name: 'check',
    qemu: (image) => command('qemu-img', ['check', image]),
    qcow: (image) => qcowCommand(['check', image]),
  },
  {
    name: 'check -U',
    qemu: (image) => command('qemu-img', ['check', '-U', image]),
    qcow: (image) => qcowCommand(['check', '-U', image]),
  },
  {
    name: 'check -r leaks',
    qemu: (image) => command('qemu-img', ['check', '-r', 'leaks', image]),
    qcow: (image) => qcowCommand(['check', '-r', 'leaks', image]),
  },
  {
    name: 'convert -O raw',
    qemu: (image, scratch) => command('qemu-img', ['convert', '-O', 'raw', image, scratch('out.raw')]),
    qcow: (image, scratch) => qcowCommand(['convert', '-O', 'raw', image, scratch('out.raw')]),
  },
  {
    name: 'convert -n into it',
    rawOnly: true,
    qemu: (image, scratch) => command('qemu-img', ['convert', '-n', '-O', 'raw', scratch('zero.raw'), image]),
    qcow: (image, scratch) => qcowCommand(['convert', '-n', '-O', 'raw', scratch('zero.raw'), image]),
  },
  {
    name: 'snapshot -l',
    qemu: (image) => command('qemu-img', ['snapshot', '-l', image]),
    qcow: (image) => qcowCommand(['snapshot', '-l', image]),
  },
  {
    name: 'serve read-write (qemu-nbd | qcow serve)',
    qemu: (image, scratch) => serverVerdict('qemu-nbd', ['-k', scratch('probe.sock'), image], scratch('probe.sock')),
    qcow: (image, scratch) => serverVerdict(process.execPath, [QCOW_CLI, 'serve', '-k', scratch('probe.sock'), image], scratch('probe.sock')),
  },
  {
    name: 'serve read-only (-r)',
    qemu: (image, scratch) => serverVerdict('qemu-nbd', ['-r', '-k', scratch('probe.sock'), image], scratch('probe.sock')),
    qcow: (image, scratch) => serverVerdict(process.execPath, [QCOW_CLI, 'serve', '-r', '-k', scratch('probe.sock'), image], scratch('probe.sock')),
  },
];
