import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool, run, scratch, sha256File, type Scratch } from '@q/test-support';
import { boot } from './boot.js';
import { guestImage, type GuestImage } from './guest/guest-image.js';
import { makeBaseImage, makeOverlay } from './host/base-image.js';
import { reportedSums } from './host/ext4-files.js';
import { startServe, type ServeProcess } from './host/serve-process.js';
import { cowScenario } from './scenarios.js';

/**
 * `qcow serve --cow` (qemu-nbd's --snapshot): the guest gets a writable disk whose writes land in a temporary
 * overlay, and the file it names never changes. The guest writes, drops its page cache and reads back through
 * the export; the host then finds the image byte for byte as it was, and the server gone cleanly on SIGTERM.
 */
describe('a guest on a --cow export', () => {
  let dir: Scratch;
  let guest: GuestImage;
  const servers: ServeProcess[] = [];

  beforeAll(() => {
    for (const tool of ['mke2fs', 'e2fsck', 'debugfs', 'qemu-img']) requireTool(tool);
    dir = scratch('qcow-vm-cow-');
    guest = guestImage();
  });

  afterAll(async () => {
    for (const server of servers) await server.kill();
    dir?.cleanup();
  });

  it('d: the guest reads its writes back from the export, the image file never changes', async () => {
    const base = await makeBaseImage(dir);
    const top = makeOverlay(base, dir.path('top.qcow2'));
    const topSum = await sha256File(top);
    const server = await startServe(dir.path('cow.sock'), ['-t', '--cow', top]);
    servers.push(server);
    const result = await boot(guest, {
      name: 'd (qcow serve --cow)',
      drive: `file=${server.uri},format=raw`,
      scenario: cowScenario(),
      initramfsPath: dir.path('cow.initrd'),
    });
    const wrote = reportedSums(result.reports, 'wrote');
    const readBack = reportedSums(result.reports);
    expect(wrote.size).toBe(3);
    for (const [path, sum] of wrote) expect(readBack.get(path), path).toBe(sum);
    for (const [path, sum] of base.files) if (path !== 'data/blob.bin') expect(readBack.get(path), path).toBe(sum);
    expect(await server.stop(), server.stderr()).toEqual({ code: 0, signal: null });

    expect(await sha256File(top)).toBe(topSum);
    expect(await sha256File(base.path)).toBe(base.sha256);
    const check = run('qemu-img', ['check', top]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
