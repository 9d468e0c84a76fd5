import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, runOk, sha256File } from '@q/test-support';
import { serveScope } from './serve-scope.js';

const scope = serveScope();
const serve = scope.serve;

/** A 64 MiB qcow2 image with data, a zeroed range and holes, all written by qemu-io. */
function sampleImage(name = 'disk.qcow2'): string {
  const image = scope.dir.path(name);
  qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
  qemuIo(image, ['write -P 0x11 1M 2M', 'write -P 0x22 10M 64k', 'write -z 20M 1M', 'write -P 0x33 63M 1M']);
  return image;
}

interface NbdInfoExport {
  'export-size': number;
  is_read_only: boolean;
  can_flush: boolean;
  can_trim: boolean;
  can_multi_conn: boolean;
}

function nbdinfo(uri: string): NbdInfoExport {
  const parsed = JSON.parse(runOk('nbdinfo', ['--json', uri])) as { exports: NbdInfoExport[] };
  return parsed.exports[0]!;
}

describe('qcow serve with real NBD clients', () => {
  it('nbdinfo sees the size and the writable flags over TCP', async () => {
    const image = sampleImage();
    const server = await serve([image], 'tcp');
    const info = nbdinfo(server.uri);
    expect(info['export-size']).toBe(64 << 20);
    expect(info.is_read_only).toBe(false);
    expect(info.can_flush).toBe(true);
    expect(info.can_trim).toBe(true);
    // One client at a time by default (qemu-nbd's -e 1), so no multi-conn; with -e 2 there is.
    expect(info.can_multi_conn).toBe(false);
    const shared = await serve(['-e', '2', image], 'tcp');
    expect(nbdinfo(shared.uri).can_multi_conn).toBe(true);
  });

  it('-r and FILE@SNAP serve read-only, and writes fail', async () => {
    const image = sampleImage();
    qemuImg(['snapshot', '-c', 'snap1', image]);
    qemuIo(image, ['write -P 0x44 1M 64k']);
    const readOnly = await serve(['-t', '-r', image]);
    expect(nbdinfo(readOnly.uri).is_read_only).toBe(true);
    const write = run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 0 4k', readOnly.uri]);
    expect(`${write.stdout}${write.stderr}`).toMatch(/permi|read-only|denied/i);
    const snapshot = await serve(['-t', `${image}@snap1`]);
    expect(nbdinfo(snapshot.uri).is_read_only).toBe(true);
    // The snapshot still has the first pattern where the live image was overwritten.
    runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x11 1M 64k', snapshot.uri]);
    runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x44 1M 64k', readOnly.uri]);
  });

  it('qemu-img compare finds the served image identical to the file', async () => {
    const image = sampleImage();
    const server = await serve(['-r', image], 'tcp');
    const result = run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', server.uri, image]);
    expect(result.stdout).toContain('Images are identical');
    expect(result.status).toBe(0);
  });

  it('qemu-io writes over NBD land in the image: check is clean and the data reads back', async () => {
    const image = sampleImage();
    const server = await serve(['-t', '--discard=unmap', image]);
    runOk('qemu-io', [
      '-f',
      'raw',
      '-c',
      'write -P 0x66 5M 300k',
      '-c',
      'write -f -P 0x77 0 128k',
      '-c',
      'write -z 1M 512k',
      '-c',
      'discard 10M 64k',
      '-c',
      'flush',
      server.uri,
    ]);
    runOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0x66 5M 300k', '-c', 'read -P 0 1M 512k', server.uri]);
    expect(await server.stop()).toBe(0);
    const check = run('qemu-img', ['check', image]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('No errors were found');
    qemuIo(image, ['read -P 0x66 5M 300k', 'read -P 0x77 0 128k', 'read -P 0 1M 512k', 'read -P 0x11 1536k 1536k', 'read -P 0x33 63M 1M']);
  });

  it('nbdinfo --map agrees with qemu-img map', async () => {
    const image = sampleImage();
    const server = await serve(['-r', image]);
    const served = JSON.parse(runOk('nbdinfo', ['--map', '--json', server.uri])) as Array<{ offset: number; length: number; type: number }>;
    const mapped = JSON.parse(qemuImg(['map', '--output=json', image])) as Array<{
      start: number;
      length: number;
      present: boolean;
      zero: boolean;
      data: boolean;
      offset?: number;
    }>;
    // base:allocation from qemu-img map's terms: data -> 0; zero with a kept host cluster -> ZERO; else HOLE|ZERO.
    const expected: Array<{ offset: number; length: number; type: number }> = [];
    for (const entry of mapped) {
      const type = entry.data ? 0 : entry.zero && entry.present && entry.offset !== undefined ? 2 : 3;
      const last = expected.at(-1);
      if (last !== undefined && last.type === type) last.length += entry.length;
      else expected.push({ offset: entry.start, length: entry.length, type });
    }
    expect(served.map(({ offset, length, type }) => ({ offset, length, type }))).toEqual(expected);
    expect(expected.some((e) => e.type === 0)).toBe(true);
    expect(expected.some((e) => e.type === 3)).toBe(true);
  });

  it('nbdcopy over several connections copies the guest bytes exactly', async () => {
    const image = sampleImage();
    // -e 4: multi-conn is advertised and the four connections are served at once.
    const server = await serve(['-r', '-e', '4', '-x', 'disk', image], 'tcp');
    const out = scope.dir.path('copy.raw');
    runOk('nbdcopy', ['--connections=4', `${server.uri}/disk`, out]);
    const reference = scope.dir.path('reference.raw');
    qemuImg(['convert', '-O', 'raw', image, reference]);
    expect(await sha256File(out)).toBe(await sha256File(reference));
  });

  it('survives garbage clients and keeps serving', async () => {
    const image = sampleImage();
    const server = await serve(['-t', image]);
    for (const junk of [new Uint8Array(0), new Uint8Array(4096).fill(0xff), new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n')]) {
      await new Promise<void>((resolve) => {
        const socket = connect((server.address as { path: string }).path);
        socket.on('error', () => resolve());
        socket.once('connect', () => socket.end(junk));
        socket.once('close', () => resolve());
        socket.resume();
      });
    }
    expect(nbdinfo(server.uri)['export-size']).toBe(64 << 20);
    runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x22 10M 64k', server.uri]);
    expect(server.child.exitCode).toBeNull();
  });

  it('exits 0 on SIGTERM and leaves the image clean', async () => {
    const image = sampleImage();
    // -t: still running after its client, so SIGTERM is what ends it.
    const server = await serve(['-t', image], 'tcp');
    runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x99 32M 1M', server.uri]);
    expect(server.child.exitCode).toBeNull();
    expect(await server.stop()).toBe(0);
    expect(run('qemu-img', ['check', image]).status).toBe(0);
    qemuIo(image, ['read -P 0x99 32M 1M']);
  });

  it('fails with one line for a missing file', () => {
    const result = qcow(['serve', '-k', scope.dir.path('x.sock'), scope.dir.path('missing.qcow2')]);
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('missing.qcow2');
  });

  it('--cow takes writes but leaves the image file unchanged', async () => {
    const image = sampleImage();
    const before = await sha256File(image);
    const server = await serve(['-t', '--cow', image]);
    expect(nbdinfo(server.uri).is_read_only).toBe(false);
    const io = run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 128k', '-c', 'read -P 0x77 0 128k', '-c', 'read -P 0x11 1M 1M', server.uri]);
    expect(io.stdout).not.toMatch(/verification failed|failed/);
    expect(io.status, io.stdout + io.stderr).toBe(0);
    // A second client sees the first one's writes (one private overlay per server).
    const again = run('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x77 0 128k', server.uri]);
    expect(again.stdout).not.toMatch(/verification failed/);
    await server.stop();
    expect(await sha256File(image)).toBe(before);
  });

  it('fio (nbd engine) random 4 KiB writes at queue depth 16 verify with crc32c', async () => {
    const image = scope.dir.path('fio.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
    const server = await serve(['-t', image], 'tcp');
    const fio = run(
      'fio',
      ['--name=verify', '--ioengine=nbd', `--uri=${server.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=32m', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1', '--output-format=json'],
      // fio leaves a verify state file in its working directory.
      { timeoutMs: 240_000, cwd: scope.dir.dir },
    );
    expect(fio.status, fio.stderr + fio.stdout.slice(-2000)).toBe(0);
    // fio's nbd engine prints "fio: connected to NBD server" before the report.
    const report = JSON.parse(fio.stdout.slice(fio.stdout.indexOf('{'))) as { jobs: Array<{ error: number; write: { io_bytes: number }; read: { io_bytes: number } }> };
    expect(report.jobs[0]!.error).toBe(0);
    expect(report.jobs[0]!.write.io_bytes).toBe(32 << 20);
    expect(report.jobs[0]!.read.io_bytes).toBe(32 << 20);
    await server.stop();
    const check = run('qemu-img', ['check', image]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
