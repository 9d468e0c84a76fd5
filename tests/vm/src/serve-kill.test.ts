import { describe, expect, it } from 'vitest';
import { sha256File } from '@q/test-support';
import { boot, type BootResult } from './boot.js';
import { makeBaseImage, makeOverlay, type BaseImage } from './host/base-image.js';
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
  /** One base for both runs: overlays take every write, and the base's sum says it stayed so. */
  let shared: BaseImage | undefined;

  interface KillRun {
    base: BaseImage;
    top: string;
    fsynced: FileSums;
    /** The reboot's result, or why it failed (a scenario that exits non-zero fails its boot). */
    recovered: BootResult | Error;
  }

  /** Boot e: the guest fsyncs files until the server is killed; then a reboot through a new server checks them. */
  async function killAndReboot(name: string, serveFlags: readonly string[]): Promise<KillRun> {
    const base = (shared ??= await makeBaseImage(suite.dir));
    const top = makeOverlay(base, suite.dir.path(`${name}-top.qcow2`));
    // Names the boots in their timing lines: "e" for the plain run, "e (--cache=unsafe)" for a variant.
    const label = `e${serveFlags.length === 0 ? '' : ` (${serveFlags.join(' ')})`}`;
    const server = await serve(`${name}.sock`, ['-t', ...serveFlags, top]);
    let synced = 0;
    const result = await boot(suite.guest, {
      name: `${label}: qcow serve SIGKILLed mid-write`,
      drive: `file=${server.uri},format=raw`,
      scenario: fsyncLoopScenario(),
      initramfsPath: suite.dir.path(`${name}.initrd`),
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
    console.log(`${label}: after the kill, ${fsynced.size} files fsync'd, qemu-img check exit ${verdict}`);

    const again = await serve(`${name}-recover.sock`, ['-t', top]);
    const recovered = await boot(suite.guest, {
      name: `${label}: reboot after the kill`,
      drive: `file=${again.uri},format=raw`,
      scenario: recoveryScenario(fsynced),
      initramfsPath: suite.dir.path(`${name}-recover.initrd`),
    }).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    expect(await again.stop(), again.stderr()).toEqual({ code: 0, signal: null });
    return { base, top, fsynced, recovered };
  }

  it('e: no corruption after SIGKILL, and every fsync\'d file reads back after a reboot', async () => {
    const { base, top, fsynced, recovered } = await killAndReboot('kill', []);
    if (recovered instanceof Error) throw recovered;
    expect(recovered.reports).toContain('step synced-files-verified');
    const files = await checkedImage(top, suite.dir.path('after.raw'), suite.dir.path('after-files'));
    for (const [path, sum] of fsynced) expect(files.get(path), path).toBe(sum);
    expect(await sha256File(base.path)).toBe(base.sha256);
  });

  it('e, control: with flushes dropped (--cache=unsafe acknowledges them without writing) the same kill loses fsync\'d files', async () => {
    // The suite can fail: a server whose flush does nothing keeps the new L2 tables in memory, so the kill takes the
    // guest's fsync'd files with it and the reboot's check must notice.
    const { recovered } = await killAndReboot('unsafe', ['--cache=unsafe']);
    expect(recovered).toBeInstanceOf(Error);
    // The reboot's check names the fsync'd files it cannot find or whose sums differ.
    expect((recovered as Error).message).toMatch(/sha256sum: .*crash\/f\d+|FAILED/);
  });
});
