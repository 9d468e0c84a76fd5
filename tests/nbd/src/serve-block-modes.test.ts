// qemu-nbd's block options on `qcow serve`, with real clients and QEMU's view of the image as the oracle:
// --cache (fdatasync calls counted with strace on the server), --discard, --detect-zeroes (qemu-img map) and
// -l (an internal snapshot, read-only).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canConnect, QCOW_CLI, qcow, qemuImg, qemuIo, requireTool, run, runOk } from '@q/test-support';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-modes-');

interface MapEntry {
  start: number;
  length: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

/** qemu-img map's entry covering `offset`. */
function mapAt(image: string, offset: number): MapEntry {
  const entries = JSON.parse(qemuImg(['map', '--output=json', image])) as MapEntry[];
  const entry = entries.find((e) => e.start <= offset && offset < e.start + e.length);
  if (entry === undefined) throw new Error(`no map entry at ${offset}`);
  return entry;
}

/** A 16 MiB qcow2 image with 0x11 in its first 4 MiB (allocated clusters). */
function dataImage(name = 'disk.qcow2'): string {
  const image = scope.dir.path(name);
  qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
  qemuIo(image, ['write -P 0x11 0 4M']);
  return image;
}

/** qemu-io commands against a served export, as a client with a write-back cache (no FUA on its writes). */
function client(uri: string, commands: readonly string[]): string {
  return runOk('qemu-io', ['-t', 'writeback', '-f', 'raw', ...commands.flatMap((command) => ['-c', command]), uri]);
}

/**
 * `qcow serve -t FLAGS` on a raw image under `strace -f`, logging the server's fdatasync and fsync calls, and a way
 * to count them so far. The server is stopped through its pid file (strace is the child here).
 */
async function serveUnderStrace(flags: readonly string[]): Promise<{ uri: string; syncs: () => number; stop: () => Promise<void> }> {
  requireTool('strace');
  const disk = scope.dir.path(`disk-${flags.join('')}.raw`);
  qemuImg(['create', '-q', '-f', 'raw', disk, '16M']);
  const socket = scope.dir.path(`strace-${flags.join('')}.sock`);
  const pidFile = scope.dir.path(`strace-${flags.join('')}.pid`);
  const log = scope.dir.path(`strace-${flags.join('')}.log`);
  const args = ['-f', '-e', 'trace=fdatasync,fsync', '-o', log, process.execPath, QCOW_CLI, 'serve', '-t', `--pid-file=${pidFile}`, '-k', socket, '-f', 'raw', ...flags, disk];
  const tracer = spawn('strace', args, { stdio: 'ignore' });
  const ended = new Promise<void>((resolve) => tracer.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 400 && !(existsSync(pidFile) && (await canConnect(socket))); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Each call starts a line ("fdatasync(21) = 0" or "fdatasync(21 <unfinished ...>").
  const syncs = (): number => (readFileSync(log, 'utf8').match(/\bf(?:data)?sync\(/g) ?? []).length;
  return {
    uri: `nbd+unix:///?socket=${socket}`,
    syncs,
    stop: async () => {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
      await ended;
    },
  };
}


describe('qcow serve --cache', () => {
  const fiveWrites = ['write 0 4k', 'write 8k 4k', 'write 16k 4k', 'write 1M 64k', 'write 2M 4k'];

  // A raw image: one fdatasync per flush of the device. qemu-io closing its client flushes once.
  it.each([
    ['writeback', 1],
    ['none', 1],
    ['writethrough', 6],
    ['directsync', 6],
  ])('--cache=%s: %i fdatasync for five writes and the client\'s closing flush', async (mode, expected) => {
    const server = await serveUnderStrace([`--cache=${mode}`]);
    try {
      client(server.uri, fiveWrites);
      expect(server.syncs()).toBe(expected);
    } finally {
      await server.stop();
    }
  });

  it('--cache=unsafe: no fdatasync at all, even for explicit flushes; the writes land', async () => {
    const server = await serveUnderStrace(['--cache=unsafe']);
    try {
      client(server.uri, [...fiveWrites, 'flush', 'write -f -P 0x22 4M 4k', 'flush']);
      expect(server.syncs()).toBe(0);
      client(server.uri, ['read -P 0x22 4M 4k']);
    } finally {
      await server.stop();
    }
  });

  it('-n is --cache=none', async () => {
    const server = await serveUnderStrace(['-n']);
    try {
      client(server.uri, fiveWrites);
      expect(server.syncs()).toBe(1);
    } finally {
      await server.stop();
    }
  });
});

describe('qcow serve --discard', () => {
  it('ignore (the default): trim is advertised, succeeds, and the data stays', async () => {
    const image = dataImage();
    const server = await scope.serve(['-t', image]);
    const info = JSON.parse(runOk('nbdinfo', ['--json', server.uri])) as { exports: Array<{ can_trim: boolean }> };
    expect(info.exports[0]!.can_trim).toBe(true);
    expect(client(server.uri, ['discard 1M 1M'])).toContain('discard 1048576/1048576 bytes');
    client(server.uri, ['read -P 0x11 1M 1M']);
    expect(await server.stop()).toBe(0);
    expect(mapAt(image, 1 << 20)).toMatchObject({ data: true, zero: false });
  });

  it('unmap: the trim reaches the image (qemu-img map: no data there), check stays clean', async () => {
    const image = dataImage();
    const server = await scope.serve(['--discard=unmap', image]);
    client(server.uri, ['discard 1M 1M']);
    expect(await server.exited()).toBe(0);
    expect(mapAt(image, 1 << 20)).toMatchObject({ data: false, zero: true });
    expect(mapAt(image, 0)).toMatchObject({ data: true });
    expect(run('qemu-img', ['check', image]).status).toBe(0);
  });
});

describe('qcow serve --detect-zeroes', () => {
  // Zeros over allocated data at 1M, over unallocated space at 8M; a 4 KiB zero write inside data at 2M.
  const zeroWrites = ['write -P 0 1M 64k', 'write -P 0 8M 64k', 'write -P 0 2M 4k'];

  it('off (the default): zeros are written as data', async () => {
    const image = dataImage();
    const server = await scope.serve([image]);
    client(server.uri, zeroWrites);
    expect(await server.exited()).toBe(0);
    expect(mapAt(image, 8 << 20)).toMatchObject({ data: true });
    expect(mapAt(image, 1 << 20)).toMatchObject({ data: true });
  });

  it('on: a write of zeros becomes a zero cluster (qemu-img map zero:true), keeping an allocated one', async () => {
    const image = dataImage();
    const server = await scope.serve(['--detect-zeroes=on', image]);
    client(server.uri, zeroWrites);
    expect(await server.exited()).toBe(0);
    const overData = mapAt(image, 1 << 20);
    expect(overData).toMatchObject({ start: 1 << 20, length: 64 << 10, present: true, zero: true, data: false });
    expect(overData.offset).toBeDefined();
    const overNothing = mapAt(image, 8 << 20);
    expect(overNothing).toMatchObject({ start: 8 << 20, length: 64 << 10, present: true, zero: true, data: false });
    expect(overNothing.offset).toBeUndefined();
    // Part of a cluster: zeros written into it, as QEMU does.
    expect(mapAt(image, 2 << 20)).toMatchObject({ data: true });
    expect(run('qemu-img', ['check', image]).status).toBe(0);
    qemuIo(image, ['read -P 0 1M 64k', 'read -P 0x11 1088k 960k', 'read -P 0 2M 4k', 'read -P 0x11 2052k 4k']);
  });

  it('unmap with --discard=unmap: an allocated cluster written with zeros is released', async () => {
    const image = dataImage();
    const server = await scope.serve(['--discard=unmap', '--detect-zeroes=unmap', image]);
    client(server.uri, zeroWrites);
    expect(await server.exited()).toBe(0);
    const overData = mapAt(image, 1 << 20);
    expect(overData).toMatchObject({ present: true, zero: true, data: false });
    expect(overData.offset).toBeUndefined();
    expect(run('qemu-img', ['check', image]).status).toBe(0);
  });
});

describe('qcow serve -l (--load-snapshot)', () => {
  it('serves the snapshot read-only, named as qemu-nbd takes it', async () => {
    const image = scope.dir.path('snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
    qemuIo(image, ['write -P 0x31 0 1M']);
    qemuImg(['snapshot', '-c', 'snap1', image]);
    qemuIo(image, ['write -P 0x32 0 1M']);
    for (const param of ['snap1', 'snapshot.name=snap1', 'snapshot.id=1', '1', 'snapshot.id=1,snapshot.name=snap1']) {
      const server = await scope.serve(['-t', '-l', param, image]);
      const info = JSON.parse(runOk('nbdinfo', ['--json', server.uri])) as { exports: Array<{ is_read_only: boolean }> };
      expect(info.exports[0]!.is_read_only, param).toBe(true);
      runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x31 0 1M', server.uri]);
      const write = run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 0 4k', server.uri]);
      expect(write.stdout + write.stderr).toMatch(/permi|read-only|denied/i);
      expect(await server.stop()).toBe(0);
    }
    qemuIo(image, ['read -P 0x32 0 1M']);
    for (const param of ['nosuch', 'snapshot.name=snap1,snapshot.id=2']) {
      const missing = qcow(['serve', '-l', param, '-k', scope.dir.path('x.sock'), image]);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toBe("qcow: Failed to load snapshot: Can't find snapshot\n");
    }
  });
});
