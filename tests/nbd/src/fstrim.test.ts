import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { qcow, qemuImg, requireTool, run, runOk, scratch, type Scratch } from '@q/test-support';
import { startServe, type ServeProcess } from './nbd-server.js';

const MiB = 1024 * 1024;

/**
 * A real fstrim through NBD: an ext4 file system lives on the export (nbdfuse shows it as a file, a loop device
 * makes that a block device), a file is deleted and `fstrim` runs. The kernel turns the free extents into
 * discards, the loop device into hole punches on the FUSE file, nbdfuse into NBD_CMD_TRIM, and `qcow serve
 * --discard=unmap` into holes in the qcow2 file: `du` of the image must drop by what the deleted file held, the
 * other file must read the same, and the image stays clean. (A guest's fstrim through qemu's NBD client sends the
 * same TRIM commands; the VM suite boots one.)
 */
describe('fstrim through NBD gives the space back', () => {
  let dir: Scratch | undefined;
  const cleanups: Array<() => void | Promise<void>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    cleanups.length = 0;
    dir?.cleanup();
  });

  it('qcow2 image served read-write: du drops by the deleted file, check is clean, the kept file reads the same', async () => {
    for (const tool of ['nbdfuse', 'losetup', 'mkfs.ext4', 'mount', 'umount', 'fstrim', 'sha256sum', 'e2fsck']) requireTool(tool);
    const scratchDir = scratch('qcow-fstrim-');
    dir = scratchDir;
    const image = scratchDir.path('disk.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '256M']);
    const server: ServeProcess = await startServe(['-t', '--discard=unmap', image], { socket: scratchDir.path('nbd.sock') });
    cleanups.push(() => void server.stop());

    const fuseDir = scratchDir.path('fuse');
    mkdirSync(fuseDir);
    const fuse = await mountNbdFuse(fuseDir, server.uri);
    cleanups.push(() => fuse.stop());
    const loop = runOk('losetup', ['-f', '--show', join(fuseDir, 'nbd')]).trim();
    cleanups.push(() => void run('losetup', ['-d', loop]));
    runOk('mkfs.ext4', ['-q', loop]);
    const mountPoint = scratchDir.path('mnt');
    mkdirSync(mountPoint);
    runOk('mount', [loop, mountPoint]);
    cleanups.push(() => void run('umount', [mountPoint]));

    runOk('dd', ['if=/dev/urandom', `of=${join(mountPoint, 'deleted')}`, 'bs=1M', 'count=48', 'status=none']);
    runOk('dd', ['if=/dev/urandom', `of=${join(mountPoint, 'kept')}`, 'bs=1M', 'count=48', 'status=none']);
    runOk('sync', []);
    const keptSum = runOk('sha256sum', [join(mountPoint, 'kept')]).split(' ')[0];
    const before = statSync(image).blocks * 512;
    runOk('rm', [join(mountPoint, 'deleted')]);
    runOk('sync', []);
    const trimmed = runOk('fstrim', ['-v', mountPoint]);
    expect(trimmed).toMatch(/trimmed/);
    runOk('sync', []);
    // The holes are punched at the server's next flush, which sync and fstrim send.
    const after = statSync(image).blocks * 512;
    expect(before - after, `du went from ${before} to ${after}`).toBeGreaterThanOrEqual(0.9 * 48 * MiB);

    // Read the kept file from the device again, not from the page cache.
    runOk('umount', [mountPoint]);
    runOk('mount', [loop, mountPoint]);
    expect(runOk('sha256sum', [join(mountPoint, 'kept')]).split(' ')[0]).toBe(keptSum);
    runOk('umount', [mountPoint]);
    run('losetup', ['-d', loop]);
    await fuse.stop();
    expect(await server.stop()).toBe(0);
    cleanups.length = 0;

    const check = run('qemu-img', ['check', image]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(qcow(['check', image]).status).toBe(0);
    const raw = scratchDir.path('disk.raw');
    qemuImg(['convert', '-O', 'raw', image, raw]);
    const fsck = run('e2fsck', ['-fn', raw]);
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
  });
});

/** Runs nbdfuse on `mountPoint` (the export shows as `mountPoint/nbd`) until `stop()` unmounts it. */
async function mountNbdFuse(mountPoint: string, uri: string): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn('nbdfuse', [mountPoint, uri], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const file = join(mountPoint, 'nbd');
  for (let attempt = 0; attempt < 200 && !(existsSync(file) && statSync(file).size > 0); attempt++) {
    if (child.exitCode !== null) throw new Error(`nbdfuse exited: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!existsSync(file)) throw new Error(`nbdfuse did not mount ${mountPoint}: ${stderr}`);
  return {
    stop: async () => {
      // Unmounting ends nbdfuse; a kill is the fallback.
      run('umount', [mountPoint]);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
