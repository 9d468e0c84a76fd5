import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';

// `qcow io -c 'write -c ...'` against `qemu-io`: the same refusals, and the same clusters stored compressed (a
// cluster compression cannot shrink stays plain; the disk's short last cluster is compressed padded with zeros).

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-io-compressed-');
  const noise = new Uint8Array(65536);
  let x = 7;
  for (let i = 0; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  writeFileSync(s.path('noise.bin'), noise);
});
afterAll(() => s.cleanup());

interface CheckJson {
  'compressed-clusters'?: number;
  'allocated-clusters'?: number;
}

const lines = ['write -c -P 3 0 64k', 'write -c -s noise.bin 64k 64k', 'write -c -P 5 128k 128k', 'write -c -P 9 320k 36k'];

describe('io write -c, side by side with qemu-io', () => {
  it('stores the same clusters compressed, and the image checks clean', () => {
    for (const tag of ['theirs', 'mine']) qemuImg(['create', '-q', '-f', 'qcow2', s.path(`${tag}.qcow2`), '356k']);
    for (const line of lines) {
      const theirs = run('qemu-io', ['-f', 'qcow2', '-c', line, 'theirs.qcow2'], { cwd: s.dir });
      const mine = qcow(['io', '-f', 'qcow2', '-c', line, 'mine.qcow2'], { cwd: s.dir });
      expect(theirs.status, theirs.stdout).toBe(0);
      expect(mine.status, mine.stderr).toBe(0);
    }
    expect(run('qemu-img', ['compare', s.path('theirs.qcow2'), s.path('mine.qcow2')]).status).toBe(0);
    const check = (tag: string): CheckJson => JSON.parse(run('qemu-img', ['check', '--output=json', s.path(`${tag}.qcow2`)]).stdout) as CheckJson;
    expect(check('mine')['compressed-clusters']).toBe(check('theirs')['compressed-clusters']);
    expect(check('mine')['compressed-clusters']).toBeGreaterThanOrEqual(4);
    expect(check('mine')['allocated-clusters']).toBe(check('theirs')['allocated-clusters']);
    const map = (tag: string): string => qemuImg(['map', '--output=json', s.path(`${tag}.qcow2`)]).replace(/, "offset": \d+/g, '');
    expect(map('mine')).toBe(map('theirs'));
  });

  it("refuses what qemu-io refuses, in qemu-io's words", () => {
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('small.qcow2'), '1M']);
    qemuImg(['create', '-q', '-f', 'raw', s.path('plain.raw'), '1M']);
    for (const [format, file, line] of [
      ['qcow2', 'small.qcow2', 'write -c 512 64k'],
      ['qcow2', 'small.qcow2', 'write -c 0 1000'],
      ['qcow2', 'small.qcow2', 'write -c 0 36k'],
      ['qcow2', 'small.qcow2', 'write -c -f 0 64k'],
      ['raw', 'plain.raw', 'write -c 0 64k'],
    ] as const) {
      const theirs = run('qemu-io', ['-f', format, '-c', line, file], { cwd: s.dir });
      const mine = qcow(['io', '-f', format, '-c', line, file], { cwd: s.dir });
      // qemu-io prints these on stdout, qcow io on stderr.
      expect((mine.stdout + mine.stderr).split('\n')[0], line).toBe((theirs.stdout + theirs.stderr).split('\n')[0]);
      expect(mine.status, line).toBe(theirs.status);
    }
  });
});
