import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, requireTool, scratch, sha256File, type Scratch } from '@q/test-support';
import { boot } from './boot.js';
import { guestImage, type GuestImage } from './guest/guest-image.js';
import { makeExt4, reportedSums, sumLines, writeBaseTree } from './host/ext4-files.js';
import { checkedImage } from './host/image-checks.js';
import { startServe, type ServeProcess } from './host/serve-process.js';
import { readWriteScenario } from './scenarios.js';

/**
 * A real Linux guest on our disks (issue 13): an ext4 built on the host becomes a qcow2 base with `qcow convert`,
 * gets an overlay from `qcow create -b`, and a guest kernel reads and writes it through `qcow serve`. After the
 * boot, the host judges the image itself: both checkers clean, e2fsck clean, every file's sum equal to what the
 * guest printed.
 */
describe('a guest kernel on qcow images', () => {
  let dir: Scratch;
  let guest: GuestImage;
  const servers: ServeProcess[] = [];

  beforeAll(() => {
    for (const tool of ['mke2fs', 'e2fsck', 'debugfs', 'qemu-img']) requireTool(tool);
    dir = scratch('qcow-vm-');
    guest = guestImage();
  });

  afterAll(async () => {
    for (const server of servers) await server.kill();
    dir?.cleanup();
  });

  it('a: qcow serve, read-write over a backing chain: base files, writes, copy-on-write, zeroes, fstrim', async () => {
    const tree = dir.path('tree');
    mkdirSync(tree);
    const baseFiles = writeBaseTree(tree);
    makeExt4(tree, dir.path('base.raw'), 128);
    const base = dir.path('base.qcow2');
    const top = dir.path('top.qcow2');
    expect(qcow(['convert', '-O', 'qcow2', dir.path('base.raw'), base]).status).toBe(0);
    expect(qcow(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]).status).toBe(0);
    const baseSum = await sha256File(base);

    const server = await startServe(dir.path('a.sock'), ['-t', '--discard=unmap', top]);
    servers.push(server);
    const result = await boot(guest, {
      name: 'a (qcow serve, read-write)',
      drive: `file=${server.uri},format=raw,discard=unmap,detect-zeroes=unmap`,
      scenario: readWriteScenario(),
      initramfsPath: dir.path('a.initrd'),
    });
    expect(result.reports).toContain('step base-files-verified');
    expect(result.reports.some((line) => /^trim \/mnt: \d+ bytes trimmed/.test(line)), result.reports.join('\n')).toBe(true);
    // SIGTERM: the server flushes, closes and exits 0 (QEMU has already disconnected).
    expect(await server.stop(), server.stderr()).toEqual({ code: 0, signal: null });

    const afterA = reportedSums(result.reports);
    for (const path of baseFiles.keys()) expect(afterA.has(path), `${path} missing in the guest`).toBe(true);
    expect(afterA.get('data/blob.bin')).not.toBe(baseFiles.get('data/blob.bin'));
    expect(afterA.has('new/large.bin') && afterA.has('new/many/f149') && afterA.has('new/zeros.bin')).toBe(true);
    expect(sumLines(await checkedImage(top, dir.path('a.raw'), dir.path('a-files')))).toBe(sumLines(afterA));
    // Every write went to the overlay: the backing file is byte for byte what convert made.
    expect(await sha256File(base)).toBe(baseSum);
  });
});
