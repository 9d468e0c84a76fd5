import { describe, expect, it } from 'vitest';
import { qcow, qemuImg, sha256File } from '@q/test-support';
import { boot } from './boot.js';
import { makeBaseImage, makeOverlay, type BaseImage } from './host/base-image.js';
import { reportedSums, sumLines, type FileSums } from './host/ext4-files.js';
import { checkedImage } from './host/image-checks.js';
import { directScenario, readWriteScenario, snapshotScenario } from './scenarios.js';
import { vmSuite } from './vm-suite.js';

/**
 * A real Linux guest on our disks (issue 13): an ext4 built on the host becomes a qcow2 base with `qcow convert`,
 * gets an overlay from `qcow create -b`, and a guest kernel reads and writes it through `qcow serve` (boot a);
 * after `qcow snapshot -c`, QEMU's own qcow2 driver boots the image (b); then the snapshot is served read-only
 * (c). The boots build on each other, in order. After each, the host judges the image itself: both checkers clean,
 * e2fsck clean, every file's sum equal to what the guest printed.
 */
describe('a guest kernel on qcow images', () => {
  const suite = vmSuite('qcow-vm-');
  const { serve } = suite;
  let base: BaseImage;
  let top: string;
  let afterA: FileSums;

  it('a: qcow serve, read-write over a backing chain: base files, writes, copy-on-write, zeroes, fstrim', async () => {
    base = await makeBaseImage(suite.dir);
    top = makeOverlay(base, suite.dir.path('top.qcow2'));

    const server = await serve('a.sock', ['-t', '--discard=unmap', top]);
    const result = await boot(suite.guest, {
      name: 'a (qcow serve, read-write)',
      drive: `file=${server.uri},format=raw,discard=unmap,detect-zeroes=unmap`,
      scenario: readWriteScenario(),
      initramfsPath: suite.dir.path('a.initrd'),
    });
    expect(result.reports).toContain('step base-files-verified');
    // The first fstrim after a mount trims all free space, so some bytes went out as NBD TRIM.
    const trimmed = result.reports.map((line) => /^trim \/mnt: (\d+) bytes trimmed/.exec(line)?.[1]).find(Boolean);
    expect(Number(trimmed ?? 0), result.reports.filter((line) => !line.startsWith('sum ')).join('\n')).toBeGreaterThan(0);
    // SIGTERM: the server flushes, closes and exits 0 (QEMU has already disconnected).
    expect(await server.stop(), server.stderr()).toEqual({ code: 0, signal: null });

    afterA = reportedSums(result.reports);
    for (const path of base.files.keys()) expect(afterA.has(path), `${path} missing in the guest`).toBe(true);
    expect(afterA.get('data/blob.bin')).not.toBe(base.files.get('data/blob.bin'));
    expect(afterA.has('new/large.bin') && afterA.has('new/many/f149') && afterA.has('new/zeros.bin')).toBe(true);
    expect(sumLines(await checkedImage(top, suite.dir.path('a.raw'), suite.dir.path('a-files')))).toBe(sumLines(afterA));
    // Every write went to the overlay: the backing file is byte for byte what convert made.
    expect(await sha256File(base.path)).toBe(base.sha256);
  });

  it('b: after qcow snapshot -c, QEMU boots the image directly and finds every file', async () => {
    expect(qcow(['snapshot', '-c', 'snap1', top]).status).toBe(0);
    expect(qemuImg(['snapshot', '-l', top])).toMatch(/\bsnap1\b/);
    const result = await boot(suite.guest, {
      name: 'b (QEMU qcow2 driver)',
      drive: `file=${top},format=qcow2,discard=unmap`,
      scenario: directScenario(afterA),
      initramfsPath: suite.dir.path('b.initrd'),
    });
    expect(result.reports).toContain('step snapshot-state-verified');
    const afterB = reportedSums(result.reports);
    expect(afterB.has('after-snapshot.bin') && !afterB.has('new/many/f0')).toBe(true);
    expect(sumLines(await checkedImage(top, suite.dir.path('b.raw'), suite.dir.path('b-files')))).toBe(sumLines(afterB));
    expect(await sha256File(base.path)).toBe(base.sha256);
  });

  it('c: qcow serve -r FILE@snap1 shows the guest exactly the state at the snapshot', async () => {
    const topSum = await sha256File(top);
    const server = await serve('c.sock', ['-t', '-r', `${top}@snap1`]);
    const result = await boot(suite.guest, {
      name: 'c (qcow serve -r FILE@snap1)',
      drive: `file=${server.uri},format=raw,readonly=on`,
      scenario: snapshotScenario(),
      initramfsPath: suite.dir.path('c.initrd'),
    });
    expect(result.reports).toContain('readonly 1');
    expect(sumLines(reportedSums(result.reports))).toBe(sumLines(afterA));
    expect(await server.stop(), server.stderr()).toEqual({ code: 0, signal: null });
    expect(await sha256File(top)).toBe(topSum);
  });
});
