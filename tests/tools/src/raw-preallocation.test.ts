import { existsSync, rmSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';

// New raw files as qemu-img makes them: `create -f raw` and `convert -O raw` with `-o preallocation=off|falloc|full`
// give the same allocation (st_blocks, as du counts) and the same `qemu-img map` (QEMU writes the first 4 KiB of
// every raw file it creates; falloc reserves blocks that read as zeros without being data), and the same refusals
// (metadata leaves an empty file behind, an unknown mode leaves none).

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-raw-prealloc-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('src.qcow2'), '4M']);
  qemuIo(s.path('src.qcow2'), ['write -P 0x41 1M 64k']);
});
afterAll(() => s.cleanup());

const allocated = (name: string): number => statSync(s.path(name)).blocks * 512;
const map = (name: string): string => qemuImg(['map', '--output=json', '-f', 'raw', s.path(name)]);

/** Runs `args(out)` with both tools (outputs theirs-NAME and mine-NAME); both must succeed. */
function bothMake(name: string, args: (out: string) => string[]): void {
  const theirs = run('qemu-img', args(`theirs-${name}`), { cwd: s.dir });
  expect(theirs.status, theirs.stderr).toBe(0);
  const mine = qcow(args(`mine-${name}`), { cwd: s.dir });
  expect(mine.status, mine.stderr).toBe(0);
  expect(mine.stdout).toBe(theirs.stdout.replaceAll('theirs-', 'mine-'));
}

describe('raw files made with preallocation, as qemu-img makes them', () => {
  for (const mode of ['off', 'falloc', 'full']) {
    it(`create -o preallocation=${mode}`, () => {
      bothMake(`create-${mode}.raw`, (out) => ['create', '-f', 'raw', '-o', `preallocation=${mode}`, out, '1M']);
      expect(allocated(`mine-create-${mode}.raw`)).toBe(allocated(`theirs-create-${mode}.raw`));
      expect(map(`mine-create-${mode}.raw`)).toBe(map(`theirs-create-${mode}.raw`));
    });

    it(`convert -O raw -o preallocation=${mode}`, () => {
      bothMake(`convert-${mode}.raw`, (out) => ['convert', '-O', 'raw', '-o', `preallocation=${mode}`, 'src.qcow2', out]);
      expect(allocated(`mine-convert-${mode}.raw`)).toBe(allocated(`theirs-convert-${mode}.raw`));
      expect(map(`mine-convert-${mode}.raw`)).toBe(map(`theirs-convert-${mode}.raw`));
      expect(run('qemu-img', ['compare', '-F', 'raw', 'src.qcow2', `mine-convert-${mode}.raw`], { cwd: s.dir }).status).toBe(0);
    });
  }

  it('a plain create and convert write the first block too', () => {
    bothMake('plain-create.raw', (out) => ['create', '-f', 'raw', out, '1M']);
    expect(allocated('mine-plain-create.raw')).toBe(4096);
    bothMake('plain-convert.raw', (out) => ['convert', '-O', 'raw', 'src.qcow2', out]);
    expect(map('mine-plain-convert.raw')).toBe(map('theirs-plain-convert.raw'));
  });

  it('resize --preallocation=falloc reserves the new part', () => {
    for (const tag of ['theirs', 'mine']) qemuImg(['create', '-q', '-f', 'raw', s.path(`${tag}-grown.raw`), '1M']);
    expect(run('qemu-img', ['resize', '-q', '-f', 'raw', '--preallocation=falloc', 'theirs-grown.raw', '3M'], { cwd: s.dir }).status).toBe(0);
    expect(qcow(['resize', '-q', '-f', 'raw', '--preallocation=falloc', 'mine-grown.raw', '3M'], { cwd: s.dir }).status).toBe(0);
    expect(allocated('mine-grown.raw')).toBe(allocated('theirs-grown.raw'));
    expect(map('mine-grown.raw')).toBe(map('theirs-grown.raw'));
  });
});

describe('raw options qemu-img refuses, in its words, leaving what it leaves', () => {
  const lines: Array<[string, (out: string) => string[]]> = [
    ['create metadata', (out) => ['create', '-q', '-f', 'raw', '-o', 'preallocation=metadata', out, '1M']],
    ['create unknown mode', (out) => ['create', '-q', '-f', 'raw', '-o', 'preallocation=bogus', out, '1M']],
    ['convert metadata', (out) => ['convert', '-O', 'raw', '-o', 'preallocation=metadata', 'src.qcow2', out]],
    ['convert unknown mode', (out) => ['convert', '-O', 'raw', '-o', 'preallocation=bogus', 'src.qcow2', out]],
    ['convert a qcow2 option', (out) => ['convert', '-O', 'raw', '-o', 'cluster_size=4k', 'src.qcow2', out]],
    ['convert a bad size', (out) => ['convert', '-O', 'raw', '-o', 'size=abc', 'src.qcow2', out]],
    ['convert -O qcow2 a bad size', (out) => ['convert', '-O', 'qcow2', '-o', 'size=abc', 'src.qcow2', out]],
  ];
  for (const [label, args] of lines) {
    it(label, () => {
      const name = `${label.replace(/\W+/g, '-')}.raw`;
      for (const tag of ['theirs', 'mine']) rmSync(s.path(`${tag}-${name}`), { force: true });
      const theirs = run('qemu-img', args(`theirs-${name}`), { cwd: s.dir });
      const mine = qcow(args(`mine-${name}`), { cwd: s.dir });
      expect(mine.status).toBe(theirs.status);
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:').replaceAll('theirs-', 'mine-'));
      expect(existsSync(s.path(`mine-${name}`))).toBe(existsSync(s.path(`theirs-${name}`)));
      if (existsSync(s.path(`theirs-${name}`))) expect(statSync(s.path(`mine-${name}`)).size).toBe(statSync(s.path(`theirs-${name}`)).size);
    });
  }

  it('-o with -n into an existing raw file', () => {
    qemuImg(['create', '-q', '-f', 'raw', s.path('existing.raw'), '8M']);
    const args = ['convert', '-n', '-O', 'raw', '-o', 'preallocation=full', 'src.qcow2', 'existing.raw'];
    const theirs = run('qemu-img', args, { cwd: s.dir });
    const mine = qcow(args, { cwd: s.dir });
    expect(mine.status).toBe(theirs.status);
    expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:'));
  });
});
