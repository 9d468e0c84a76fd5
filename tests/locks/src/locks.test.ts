import { afterAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch } from '@q/test-support';
import { HOLDER_MODES, startHolder, startQcowHolder, type Holder, type HolderMode } from './holders.js';
import { makeLockFixture } from './lock-fixture.js';
import { comparable, PROBES, type Verdict } from './probes.js';

const dir = scratch('qcow-locks-');
afterAll(() => dir.cleanup());

/**
 * Locks both ways, against QEMU's own processes. For each way of holding an image (qemu-io, qemu-nbd, a VM, and
 * the same modes held by `qcow`), each probe (info, io, check, convert, serve...) runs as QEMU's tool and as
 * `qcow`. QEMU's tool against QEMU's holder is the oracle: the other three pairings must give the same verdict
 * (opened, or refused with the same "Failed to get ... lock"), and every holder must lock the bytes QEMU's does.
 */
describe('image locks between qcow and QEMU', () => {
  let counter = 0;
  for (const mode of HOLDER_MODES) {
    it(mode.name, async () => {
      const holders: [string, (image: string, socket: string) => [string, string[]] | string[]][] = [['qemu', mode.qemu]];
      if (mode.qcow !== undefined) holders.push(['qcow', mode.qcow]);
      const verdicts = new Map<string, Verdict>();
      for (const [holderTool, holderCommand] of holders) {
        const tag = `h${counter++}`;
        const files = makeLockFixture(dir.path, tag);
        const locked = mode.lockedFile === 'data' ? files.data : mode.lockedFile === 'raw' ? files.raw : files.image;
        const holder = await hold(holderTool, holderCommand(files.image, dir.path(`${tag}.sock`)), mode, locked);
        try {
          for (const probe of PROBES) {
            if (probe.rawOnly === true && mode.lockedFile !== 'data' && mode.lockedFile !== 'raw') continue;
            verdicts.set(`${holderTool} holder, qemu probe: ${probe.name}`, await probe.qemu(locked, dir.path));
            verdicts.set(`${holderTool} holder, qcow probe: ${probe.name}`, await probe.qcow(locked, dir.path));
          }
        } finally {
          await holder.stop();
        }
      }
      const mismatches: string[] = [];
      for (const probe of PROBES) {
        const oracle = verdicts.get(`qemu holder, qemu probe: ${probe.name}`);
        if (oracle === undefined) continue;
        for (const [key, verdict] of verdicts) {
          if (key.endsWith(`: ${probe.name}`) && comparable(verdict) !== comparable(oracle)) {
            mismatches.push(`${key}: ${verdict} (QEMU against QEMU: ${oracle})`);
          }
        }
      }
      expect(mismatches).toEqual([]);
      // The matrix must show refusals where QEMU refuses, not only agreement on "ok".
      if (mode.bytes.includes('100-101')) expect([...verdicts.values()].some((v) => v.startsWith('locked'))).toBe(true);
    });
  }
});

function hold(tool: string, command: [string, string[]] | string[], mode: HolderMode, locked: string): Promise<Holder> {
  const label = `${tool} holder (${mode.name})`;
  if (tool === 'qemu') {
    const [program, args] = command as [string, string[]];
    return startHolder(program, args, label, locked, mode.bytes);
  }
  return startQcowHolder(command as string[], label, locked, mode.bytes);
}

describe("lock messages in QEMU's words", () => {
  it('prints what qemu-img and qemu-io print, with the tool name changed', async () => {
    const files = makeLockFixture(dir.path, 'words');
    const holder = await startHolder('qemu-io', ['-c', 'sleep 600000', files.image], 'qemu-io holder', files.image, ['100-101', '103', '201', '203']);
    try {
      const pairs: [string, string[], string[]][] = [
        ['qemu-img', ['info', files.image], ['info', files.image]],
        ['qemu-img', ['check', files.image], ['check', files.image]],
        ['qemu-img', ['snapshot', '-c', 's', files.image], ['snapshot', '-c', 's', files.image]],
        ['qemu-io', ['-c', 'write 0 512', files.image], ['io', '-c', 'write 0 512', files.image]],
        ['qemu-io', ['-r', '-c', 'read 0 512', files.image], ['io', '-r', '-c', 'read 0 512', files.image]],
      ];
      for (const [tool, qemuArgs, qcowArgs] of pairs) {
        const theirs = run(tool, qemuArgs);
        const ours = qcow(qcowArgs);
        expect(ours.status).toBe(1);
        expect(ours.stderr).toBe(theirs.stderr.replace(/^qemu-img: /, 'qcow: ').replace(/^qemu-io: /, 'qcow io: '));
      }
    } finally {
      await holder.stop();
    }
  });
});
