import { describe, expect, it } from 'vitest';
import { run, sha256File } from '@q/test-support';
import { boot } from './boot.js';
import { makeBaseImage, makeOverlay } from './host/base-image.js';
import { reportedSums } from './host/ext4-files.js';
import { cowScenario } from './scenarios.js';
import { vmSuite } from './vm-suite.js';

/**
 * `qcow serve --cow` (qemu-nbd's --snapshot): the guest gets a writable disk whose writes land in a temporary
 * overlay, and the file it names never changes. The guest writes, drops its page cache and reads back through
 * the export; the host then finds the image byte for byte as it was, and the server gone cleanly on SIGTERM.
 */
describe('a guest on a --cow export', () => {
  const suite = vmSuite('qcow-vm-cow-');
  const { serve } = suite;

  it('d: the guest reads its writes back from the export, the image file never changes', async () => {
    const base = await makeBaseImage(suite.dir);
    const top = makeOverlay(base, suite.dir.path('top.qcow2'));
    const topSum = await sha256File(top);
    const server = await serve('cow.sock', ['-t', '--cow', top]);
    const result = await boot(suite.guest, {
      name: 'd (qcow serve --cow)',
      drive: `file=${server.uri},format=raw`,
      scenario: cowScenario(),
      initramfsPath: suite.dir.path('cow.initrd'),
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
