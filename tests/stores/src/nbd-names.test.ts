import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, qemuImg, qemuIo, runOk, scratch, sha256File, type Scratch } from '@q/test-support';
import { freePort, qcowWith, startServer, type ServerProcess } from './served-qcow.js';

/**
 * NBD names wherever qemu-img takes them: `nbd://HOST:PORT/NAME`, `nbd+unix:///NAME?socket=PATH` and QEMU's
 * `nbd:unix:PATH`, against real qemu-nbd and nbdkit exports. An export's bytes may be a qcow2 image (qemu-nbd
 * -f raw of a qcow2 file): it is probed and opened as qemu-img does.
 */
let dir: Scratch;
let image: string;
let imageExport: ServerProcess;
let socketExport: ServerProcess;
let socket: string;

beforeAll(async () => {
  dir = scratch('q-nbd-names-');
  image = dir.path('disk.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
  qemuIo(image, ['write -P 0x61 0 2M', 'write -P 0x62 9M 1M', 'write -z 12M 1M']);
  // The qcow2 file's own bytes, as a remote disk holding an image would serve them.
  const port = await freePort();
  imageExport = await startServer('qemu-nbd', ['-r', '-t', '-e', '4', '-f', 'raw', '-x', 'img', '-b', '127.0.0.1', '-p', String(port), image], port);
  socket = dir.path('nbd.sock');
  socketExport = await startUnix(['-r', '-t', '-e', '4', '-f', 'qcow2', '-k', socket, image]);
});

afterAll(async () => {
  await imageExport?.stop();
  await socketExport?.stop();
  dir?.cleanup();
});

/** qemu-nbd on the unix socket `socket`. */
async function startUnix(args: string[]): Promise<ServerProcess> {
  const child = spawn('qemu-nbd', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 200 && !(await canConnect({ path: socket })); i++) await new Promise((r) => setTimeout(r, 50));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { port: 0, uri: `nbd+unix:///?socket=${socket}`, stop };
}

async function localSha(): Promise<string> {
  const out = dir.path('local.raw');
  qemuImg(['convert', '-O', 'raw', image, out]);
  return sha256File(out);
}

describe('nbd names', () => {
  it('info probes the qcow2 image an export holds, as qemu-img info does', () => {
    const name = `nbd://127.0.0.1:${imageExport.port}/img`;
    const ours = JSON.parse(qcowWith({}, ['info', '--output=json', name]).stdout) as Record<string, unknown>;
    const theirs = JSON.parse(runOk('qemu-img', ['info', '--output=json', name])) as Record<string, unknown>;
    expect(ours['format']).toBe('qcow2');
    expect(ours['virtual-size']).toBe(theirs['virtual-size']);
    expect(ours['cluster-size']).toBe(theirs['cluster-size']);
  });

  it('convert -O raw reads the image through the export, in every spelling of its name', async () => {
    const want = await localSha();
    for (const name of [`nbd://127.0.0.1:${imageExport.port}/img`, `nbd:127.0.0.1:${imageExport.port}:exportname=img`, socketExport.uri, `nbd:unix:${socket}`]) {
      const out = dir.path('from-nbd.raw');
      const result = qcowWith({}, ['convert', '-O', 'raw', name, out]);
      expect(result.stderr, name).toBe('');
      expect(await sha256File(out), name).toBe(want);
    }
  });

  it('convert -n writes an image into an nbdkit export', async () => {
    const port = await freePort();
    const target = await startServer('nbdkit', ['-f', '-p', String(port), '--ipaddr', '127.0.0.1', 'memory', '16M'], port);
    try {
      const result = qcowWith({}, ['convert', '-n', image, target.uri]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const back = dir.path('back.raw');
      runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', target.uri, back]);
      expect(await sha256File(back)).toBe(await localSha());
    } finally {
      await target.stop();
    }
  });

  it('a refused connection and an unknown export are one-line errors naming the export', async () => {
    const port = await freePort();
    for (const name of [`nbd://127.0.0.1:${port}/x`, `nbd://127.0.0.1:${imageExport.port}/nope`]) {
      const result = qcowWith({}, ['info', name]);
      expect(result.status, name).toBe(1);
      expect(result.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(result.stderr, name).toContain('127.0.0.1');
    }
  });
});
