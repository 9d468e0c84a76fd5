import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { writeMixedRaw } from './oracle.js';

// `qcow convert A B C OUT`: several sources end to end, as qemu-img convert concatenates them. Each case runs both
// tools on the same sources and compares the outputs: the same bytes (qemu-img compare), the same map (where
// clusters were allocated, zeros left out, compressed clusters) and the same file size; then the refusals that
// apply only to several sources, in qemu-img's words and order.

let s: Scratch;
let sources: string[];
beforeAll(() => {
  s = scratch('interop-concat-');
  const at = (name: string) => s.path(name);
  // A qcow2 image with data and zeros, over a backing file of its own (the output must see through it).
  qemuImg(['create', '-q', '-f', 'qcow2', at('base.qcow2'), '1M']);
  qemuIo(at('base.qcow2'), ['write -P 0x21 128k 192k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', at('top.qcow2')]);
  qemuIo(at('top.qcow2'), ['write -P 0x31 0 64k', 'write -z 192k 64k']);
  // A raw file whose length is no multiple of a sector: the next source starts mid-cluster.
  writeMixedRaw(at('odd.raw'), 70000, 5);
  // A compressed qcow2 image with a zero cluster and an unallocated tail.
  writeMixedRaw(at('mixed.raw'), 2 * 1024 * 1024, 9);
  qemuImg(['convert', '-c', '-f', 'raw', '-O', 'qcow2', at('mixed.raw'), at('packed.qcow2')]);
  qemuImg(['resize', '-q', at('packed.qcow2'), '3M']);
  qemuIo(at('packed.qcow2'), ['write -z 1M 64k']);
  sources = ['top.qcow2', 'odd.raw', 'packed.qcow2'].map(at);
});
afterAll(() => s.cleanup());

function map(image: string): string {
  return qemuImg(['map', '--output=json', image]);
}

function withoutOffsets(mapped: string): string {
  return mapped.replace(/, "offset": \d+/g, '');
}

describe('qcow convert of several sources, side by side with qemu-img', () => {
  const cases: Array<[string, string[]]> = [
    ['raw', ['-O', 'raw']],
    ['qcow2', ['-O', 'qcow2']],
    ['qcow2 -c', ['-O', 'qcow2', '-c']],
    ['qcow2 zstd 4k clusters', ['-O', 'qcow2', '-c', '-o', 'compression_type=zstd,cluster_size=4k']],
    ['qcow2 compat=0.10', ['-O', 'qcow2', '-o', 'compat=0.10']],
  ];
  for (const [label, flags] of cases) {
    it(`${label}: the same bytes, the same layout`, () => {
      const theirs = s.path(`theirs-${label.replace(/\W+/g, '-')}`);
      const mine = s.path(`mine-${label.replace(/\W+/g, '-')}`);
      qemuImg(['convert', ...flags, ...sources, theirs]);
      const result = qcow(['convert', ...flags, ...sources, mine]);
      expect(result.status, result.stderr).toBe(0);
      expect(run('qemu-img', ['compare', theirs, mine]).status).toBe(0);
      if (flags.includes('-c')) {
        // Another compressor: compressed clusters differ in length (at most 5% more in all), so offsets move.
        expect(statSync(mine).size / statSync(theirs).size).toBeLessThanOrEqual(1.05);
        expect(withoutOffsets(map(mine))).toBe(withoutOffsets(map(theirs)));
      } else {
        expect(statSync(mine).size).toBe(statSync(theirs).size);
      }
      if (flags.includes('qcow2')) {
        if (!flags.includes('-c')) expect(map(mine)).toBe(map(theirs));
        expect(run('qemu-img', ['check', mine]).status).toBe(0);
      } else {
        expect(readFileSync(mine).equals(readFileSync(theirs))).toBe(true);
      }
    });
  }

  it('-n into an existing image: written when it is big enough, refused when it is smaller', () => {
    for (const [tool, out] of [['qemu-img', 'theirs-n.qcow2'], ['qcow', 'mine-n.qcow2']] as const) {
      qemuImg(['create', '-q', '-f', 'qcow2', s.path(out), '8M']);
      const args = ['convert', '-n', '-O', 'qcow2', ...sources, s.path(out)];
      const result = tool === 'qcow' ? qcow(args) : run('qemu-img', args);
      expect(result.status, result.stderr).toBe(0);
    }
    // The same bytes; not the same map: qemu-img flags every cluster the sources leave empty zero, also where the
    // target allocates nothing and so reads zeros already, and qcow leaves those alone (convert-qcow2.ts).
    expect(run('qemu-img', ['compare', s.path('theirs-n.qcow2'), s.path('mine-n.qcow2')]).status).toBe(0);
    expect(run('qemu-img', ['check', s.path('mine-n.qcow2')]).status).toBe(0);
    qemuImg(['create', '-q', '-f', 'raw', s.path('small.raw'), '1M']);
    const theirs = run('qemu-img', ['convert', '-n', '-O', 'raw', ...sources, s.path('small.raw')]);
    const mine = qcow(['convert', '-n', '-O', 'raw', ...sources, s.path('small.raw')]);
    expect(mine.status).toBe(theirs.status);
    expect(mine.stderr).toBe(theirs.stderr.replaceAll('qemu-img:', 'qcow:'));
  });

  it('the same source twice is read twice', () => {
    const twice = [s.path('odd.raw'), s.path('odd.raw')];
    qemuImg(['convert', '-O', 'raw', ...twice, s.path('theirs-twice.raw')]);
    expect(qcow(['convert', '-O', 'raw', ...twice, s.path('mine-twice.raw')]).status).toBe(0);
    expect(readFileSync(s.path('mine-twice.raw')).equals(readFileSync(s.path('theirs-twice.raw')))).toBe(true);
  });
});

describe('qcow convert refuses what qemu-img refuses of several sources, in its words and order', () => {
  const refusals: string[][] = [
    ['-O', 'qcow2', '-l', 'nosuch'],
    ['-O', 'qcow2', '-s', 'nosuch'],
    ['-O', 'qcow2', '-B', 'base.qcow2', '-F', 'qcow2'],
    ['-O', 'qcow2', '-o', 'backing_file=base.qcow2,backing_fmt=qcow2'],
    ['-O', 'qcow2', '--bitmaps'],
    ['-O', 'qcow2', '-t', 'bogus', '--bitmaps'],
    ['-O', 'bogus', '-B', 'base.qcow2'],
    ['-O', 'raw', '-B', 'base.qcow2'],
    ['-O', 'raw', '-c', '--bitmaps'],
  ];
  for (const flags of refusals) {
    it(flags.join(' '), () => {
      const args = ['convert', ...flags, 'top.qcow2', 'odd.raw', 'out.img'];
      // qemu-img 7.2 has no -s: its refusal of a -l stands in for both.
      const theirs = run('qemu-img', args.map((arg) => (arg === '-s' ? '-l' : arg)), { cwd: s.dir });
      const mine = qcow(args, { cwd: s.dir });
      expect(theirs.status).toBe(1);
      expect(mine.status).toBe(1);
      expect(mine.stderr).toBe(theirs.stderr.replaceAll('qemu-img:', 'qcow:'));
    });
  }

  it('a missing source is named before any of those', () => {
    const args = ['convert', '-O', 'qcow2', '-l', 'nosuch', 'top.qcow2', 'missing.qcow2', 'out.img'];
    const theirs = run('qemu-img', args, { cwd: s.dir });
    const mine = qcow(args, { cwd: s.dir });
    expect(mine.status).toBe(theirs.status);
    expect(mine.stderr).toBe(theirs.stderr.replaceAll('qemu-img:', 'qcow:'));
  });
});
