import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';
import { normalise } from './normalise.js';

// A raw file whose length is not a multiple of 512: QEMU's block layer counts whole sectors, so every tool sees the
// length rounded up (the tail reads as zeros and maps as a hole), a write past the end extends the file only as far
// as it reaches, and growing by less than the rounding is a shrink. Each case runs qemu-img and qcow on copies of
// the same file and compares what they print and the files they leave.

const LENGTH = 1441859; // 2816 sectors and 323 bytes: qemu-img says 1442304
let s: Scratch;
beforeAll(() => {
  s = scratch('tools-raw-sector-');
  const bytes = new Uint8Array(LENGTH);
  for (let i = 0; i < LENGTH; i++) bytes[i] = (i * 7 + 3) & 0xff;
  writeFileSync(s.path('odd.raw'), bytes);
});
afterAll(() => s.cleanup());

/** Runs `args` (a fresh copy of the file and a tag for each tool's outputs) with qemu-img and with qcow. */
function sideBySide(args: (odd: string, tag: string) => string[]) {
  const results = (['theirs', 'mine'] as const).map((tag) => {
    const odd = `${tag}-odd.raw`;
    copyFileSync(s.path('odd.raw'), s.path(odd));
    const argv = args(odd, tag);
    const result = tag === 'mine' ? qcow(argv, { cwd: s.dir }) : run('qemu-img', argv, { cwd: s.dir });
    const names = { [odd]: 'ODD', [`${tag}-`]: 'TAG-' };
    return { ...result, stdout: normalise(result.stdout, names), stderr: normalise(result.stderr, names) };
  });
  return { theirs: results[0]!, mine: results[1]! };
}

function expectSame(args: (odd: string, tag: string) => string[]) {
  const { theirs, mine } = sideBySide(args);
  expect(mine.stderr).toBe(theirs.stderr);
  expect(mine.stdout).toBe(theirs.stdout);
  expect(mine.status).toBe(theirs.status);
}

describe('a raw file of a length that is not whole sectors, as qemu-img sees it', () => {
  it('info: the virtual size is rounded up to 512', () => {
    expectSame((odd) => ['info', '--output=json', '-f', 'raw', odd]);
    const info = JSON.parse(qcow(['info', '--output=json', 'odd.raw'], { cwd: s.dir }).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(1442304);
  });

  it('map: the tail past the end of the file is a hole', () => {
    expectSame((odd) => ['map', '--output=json', '-f', 'raw', odd]);
  });

  it('convert -O raw and -O qcow2 write the rounded size; compare finds them equal without a size warning', () => {
    for (const format of ['raw', 'qcow2']) {
      const { theirs, mine } = sideBySide((odd, tag) => ['convert', '-f', 'raw', '-O', format, odd, `${tag}-out.${format}`]);
      expect(mine.status).toBe(theirs.status);
      const sizes = ['theirs', 'mine'].map((tag) => JSON.parse(run('qemu-img', ['info', '--output=json', s.path(`${tag}-out.${format}`)]).stdout)['virtual-size']);
      expect(sizes).toEqual([1442304, 1442304]);
      const compared = qcow(['compare', '-f', 'raw', '-F', format, 'odd.raw', `mine-out.${format}`], { cwd: s.dir });
      expect(compared.stdout + compared.stderr).toBe('Images are identical.\n');
      expect(run('qemu-img', ['compare', '-f', 'raw', '-F', format, s.path('odd.raw'), s.path(`mine-out.${format}`)]).status).toBe(0);
    }
    expect(statSync(s.path('mine-out.raw')).size).toBe(statSync(s.path('theirs-out.raw')).size);
  });

  it('a write past the end of the file extends it only as far as the write reaches', () => {
    for (const tool of ['qemu-io', 'qcow']) copyFileSync(s.path('odd.raw'), s.path(`${tool}-written.raw`));
    const write = ['-f', 'raw', '-c', 'write -P 0x61 1441800 100'];
    expect(run('qemu-io', [...write, s.path('qemu-io-written.raw')]).status).toBe(0);
    expect(qcow(['io', ...write, s.path('qcow-written.raw')]).status).toBe(0);
    expect(statSync(s.path('qcow-written.raw')).size).toBe(1441900);
    expect(readFileSync(s.path('qcow-written.raw')).equals(readFileSync(s.path('qemu-io-written.raw')))).toBe(true);
  });

  it('resize: one byte more than the file is still a shrink; --shrink cuts to the exact length', () => {
    expectSame((odd) => ['resize', '-f', 'raw', odd, String(LENGTH + 1)]);
    expectSame((odd) => ['resize', '-f', 'raw', '--shrink', odd, '1441000']);
    expect(statSync(s.path('mine-odd.raw')).size).toBe(1441000);
  });

  it('create -b over it without a size takes the rounded size (down to whole sectors of the overlay)', () => {
    expectSame((odd, tag) => ['create', '-f', 'qcow2', '-b', odd, '-F', 'raw', `${tag}-overlay.qcow2`]);
  });
});
