import { afterAll, beforeAll, describe, it } from 'vitest';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { expectSameRaw, KiB, MiB } from './oracle.js';

// The zero flag (v3 `write -z`, with and without unmap, over a backing file or not) and preallocated images.

interface ZeroCase {
  name: string;
  compat: '0.10' | '1.1';
  backing: boolean;
  commands: string[];
}

const dataThenZero = ['write -P 0x21 0 256k', 'write -P 0x22 1M 128k', 'write -P 0x23 3M 64k'];
const zeroCases: ZeroCase[] = [
  { name: 'zero over allocated clusters (kept allocated)', compat: '1.1', backing: false, commands: [...dataThenZero, 'write -z 0 128k'] },
  { name: 'zero with unmap over allocated clusters', compat: '1.1', backing: false, commands: [...dataThenZero, 'write -z -u 0 128k', 'write -z -u 1M 64k'] },
  { name: 'zero of unallocated clusters', compat: '1.1', backing: false, commands: [...dataThenZero, 'write -z 2M 192k'] },
  { name: 'zero of partial clusters', compat: '1.1', backing: false, commands: [...dataThenZero, 'write -z 4k 8k', 'write -z 1110016 8k'] },
  { name: 'zero clusters hide the backing file', compat: '1.1', backing: true, commands: [...dataThenZero, 'write -z 0 128k', 'write -z 2M 1M', 'write -z -u 3M 64k'] },
  { name: 'zero then rewritten', compat: '1.1', backing: true, commands: ['write -z 0 1M', 'write -P 0x24 64k 4k', 'write -P 0x25 512k 64k'] },
  { name: 'v2: zero writes without the zero flag', compat: '0.10', backing: false, commands: [...dataThenZero, 'write -z 0 128k', 'write -z 2M 64k'] },
  { name: 'v2: zero writes over a backing file', compat: '0.10', backing: true, commands: [...dataThenZero, 'write -z 0 128k', 'write -z 2M 64k'] },
];

interface PreallocCase {
  mode: 'off' | 'metadata' | 'falloc' | 'full';
  compat: '0.10' | '1.1';
  clusterSize: number;
  extendedL2: boolean;
}

const preallocCases: PreallocCase[] = [
  ...(['off', 'metadata', 'falloc', 'full'] as const).flatMap((mode) =>
    [4 * KiB, 64 * KiB].map((clusterSize) => ({ mode, compat: '1.1' as const, clusterSize, extendedL2: false })),
  ),
  { mode: 'metadata', compat: '0.10', clusterSize: 64 * KiB, extendedL2: false },
  { mode: 'full', compat: '0.10', clusterSize: 64 * KiB, extendedL2: false },
  { mode: 'metadata', compat: '1.1', clusterSize: 64 * KiB, extendedL2: true },
  { mode: 'falloc', compat: '1.1', clusterSize: 2 * MiB, extendedL2: false },
];

describe('zero flag and preallocation', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-zero-');
  });
  afterAll(() => s.cleanup());

  zeroCases.forEach((c, i) => {
    it(`zero: ${c.name} (compat=${c.compat})`, async () => {
      const img = s.path(`zero${i}.qcow2`);
      const backingArgs: string[] = [];
      if (c.backing) {
        const base = s.path(`zero${i}-base.raw`);
        qemuImg(['create', '-q', '-f', 'raw', base, '4M']);
        qemuIo(base, ['write -P 0x99 0 4M'], { format: 'raw' });
        backingArgs.push('-b', base, '-F', 'raw');
      }
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', `compat=${c.compat}`, ...backingArgs, img, '4M']);
      qemuIo(img, c.commands);
      await expectSameRaw(s, img);
    });
  });

  for (const c of preallocCases) {
    const name = `preallocation=${c.mode} compat=${c.compat} cluster_size=${c.clusterSize}${c.extendedL2 ? ' extended_l2' : ''}`;
    it(name, async () => {
      const img = s.path(`prealloc-${c.mode}-${c.compat}-${c.clusterSize}-${c.extendedL2}.qcow2`);
      const size = c.clusterSize >= MiB ? 8 * MiB : 3 * MiB + 12 * KiB; // not a multiple of 64k on purpose
      const opts = `preallocation=${c.mode},compat=${c.compat},cluster_size=${c.clusterSize}${c.extendedL2 ? ',extended_l2=on' : ''}`;
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', opts, img, String(size)]);
      await expectSameRaw(s, img);
      const commands = ['write -P 0x31 4k 8k', 'write -P 0x32 1M 64k'];
      if (c.compat === '1.1') commands.push('write -z 1052672 4k', 'write -z 2M 64k');
      commands.push('discard 1M 64k');
      qemuIo(img, commands);
      await expectSameRaw(s, img);
    });
  }
});
