import { describe, expect, it } from 'vitest';
import { sha256File } from '@q/test-support';
import { boot } from './boot.js';
import { makeBaseImage, makeOverlay } from './host/base-image.js';
import { reportedSums, type FileSums } from './host/ext4-files.js';
import { checkAfterKill, checkedImage } from './host/image-checks.js';
import { fsyncLoopScenario, recoveryScenario } from './scenarios.js';
import { vmSuite } from './vm-suite.js';

/** How many fsync'd files the guest reports before the server is killed: enough that its writes are under way. */
const SYNCED_BEFORE_KILL = 25;

/**
 * `qcow serve` SIGKILLed while the guest writes, and the guest's power cut with it: the image may leak clusters
 * (allocated, not yet referenced) but must hold no corruption, and every file the guest had fsync'd before the
 * kill (the server acknowledged its flush) must read back after a reboot through a new server.
 */
describe('qcow serve killed under a writing guest', () => {
  const suite = vmSuite('qcow-vm-kill-');
  const { serve } = suite;

  it('e: no corruption after SIGKILL, and every fsync\'d file reads back after a reboot', async () => {
    const base = await makeBaseImage(suite.dir);
    const top = makeOverlay(base, suite.dir.path('top.qcow2'));
    const server = await serve('kill.sock', ['-t', top]);
    let synced = 0;
    const result = await boot(suite.guest, {
      name: 'e (qcow serve SIGKILLed mid-write)',
      drive: `file=${server.uri},format=raw`,
      scenario: fsyncLoopScenario(),
      initramfsPath: suite.dir.path('kill.initrd'),
      onReport: (line) => {
        if (!line.startsWith('synced ') || ++synced < SYNCED_BEFORE_KILL) return;
        process.kill(server.pid, 'SIGKILL');
        return 'power-off';
      },
    });
    expect(result.cut, result.serial).toBe(true);
    await server.kill();
    // Every `synced` line, even one read after the kill, followed an fsync the server acknowledged.
    const fsynced: FileSums = reportedSums(result.reports, 'synced');
    expect(fsynced.size).toBeGreaterThanOrEqual(SYNCED_BEFORE_KILL);

    const verdict = checkAfterKill(top);
    console.log(`after the kill: ${fsynced.size} files fsync'd, qemu-img check exit ${verdict}`);

    const again = await serve('recover.sock', ['-t', top]);
    const recovered = await boot(suite.guest, {
      name: 'e (reboot after the kill)',
      drive: `file=${again.uri},format=raw`,
      scenario: recoveryScenario(fsynced),
      initramfsPath: suite.dir.path('recover.initrd'),
    });
    expect(recovered.reports).toContain('step synced-files-verified');
    expect(await again.stop(), again.stderr()).toEqual({ code: 0, signal: null });

    const files = await checkedImage(top, suite.dir.path('after.raw'), suite.dir.path('after-files'));
    for (const [path, sum] of fsynced) expect(files.get(path), path).toBe(sum);
    expect(await sha256File(base.path)).toBe(base.sha256);
  });
});
