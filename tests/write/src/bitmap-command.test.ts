import { copyFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch } from '@q/test-support';
import { dirtyMap } from './dirty-map.js';

/**
 * `qcow bitmap` against `qemu-img bitmap` on copies of one image: the same exit codes and messages (after the
 * program's name), the same bitmaps in `qemu-img info`, the same dirty maps (qemu-nbd -B), and clean checks.
 */
const dir = scratch('qcow-bitmap-command-');
afterAll(() => dir.cleanup());

interface Outcome {
  status: number;
  message: string;
}

function both(base: string, args: (image: string) => string[], tag: string): { ours: string; theirs: string; outcome: [Outcome, Outcome] } {
  const ours = dir.path(`${tag}.qcow2`);
  const theirs = dir.path(`${tag}-qemu.qcow2`);
  copyFileSync(base, ours);
  copyFileSync(base, theirs);
  const a = qcow(['bitmap', ...args(ours)]);
  const b = run('qemu-img', ['bitmap', ...args(theirs)]);
  const message = (text: string, image: string): string => text.replace(/^(qcow|qemu-img): /gm, '').replaceAll(image, 'IMAGE').trim();
  return { ours, theirs, outcome: [{ status: a.status, message: message(a.stderr, ours) }, { status: b.status, message: message(b.stderr, theirs) }] };
}

function bitmapsOf(image: string): unknown {
  const info = JSON.parse(qemuImg(['info', '--output=json', '-U', image])) as { 'format-specific': { data: { bitmaps?: unknown } } };
  return info['format-specific'].data.bitmaps ?? null;
}

function expectClean(image: string): void {
  const check = run('qemu-img', ['check', image]);
  expect(check.status, `${image}: ${check.stdout}${check.stderr}`).toBe(0);
}

/** A 64 MiB image with data and three bitmaps QEMU set bits in. */
const base = dir.path('base.qcow2');
qemuImg(['create', '-q', '-f', 'qcow2', base, '64M']);
qemuImg(['bitmap', '--add', base, 'a']);
qemuImg(['bitmap', '--add', '-g', '1M', base, 'b']);
qemuImg(['bitmap', '--add', '--disable', base, 'off']);
qemuIo(base, ['write -P 1 0 100k', 'write -P 2 20M 3M']);
qemuImg(['bitmap', '--add', '-g', '4k', base, 'late']);
qemuIo(base, ['write -P 3 40M 8k']);
const other = dir.path('other.qcow2');
qemuImg(['create', '-q', '-f', 'qcow2', other, '64M']);
qemuImg(['bitmap', '--add', other, 'src']);
qemuIo(other, ['write -P 4 50M 1M']);
const smaller = dir.path('smaller.qcow2');
qemuImg(['create', '-q', '-f', 'qcow2', smaller, '32M']);
qemuImg(['bitmap', '--add', smaller, 'src']);

const cases: Array<{ label: string; args: (image: string) => string[]; maps?: string[] }> = [
  { label: 'add with the default granularity', args: (i) => ['--add', i, 'new'], maps: ['new'] },
  { label: 'add with -g 512', args: (i) => ['--add', '-g', '512', i, 'fine'], maps: ['fine'] },
  { label: 'add then disable', args: (i) => ['--add', '--disable', i, 'new'] },
  { label: 'remove', args: (i) => ['--remove', i, 'a'] },
  { label: 'clear', args: (i) => ['--clear', i, 'a'], maps: ['a'] },
  { label: 'disable, then enable', args: (i) => ['--disable', '--enable', i, 'b'], maps: ['b'] },
  { label: 'enable a disabled one', args: (i) => ['--enable', i, 'off'], maps: ['off'] },
  { label: 'merge from the same image', args: (i) => ['--merge', 'a', i, 'late'], maps: ['late'] },
  { label: 'merge from another image (-b -F)', args: (i) => ['--merge', 'src', '-b', other, '-F', 'qcow2', i, 'b'], maps: ['b'] },
  { label: 'refused: add an existing name', args: (i) => ['--add', i, 'a'] },
  { label: 'refused: missing bitmap', args: (i) => ['--clear', i, 'nope'] },
  { label: 'refused: bad granularity', args: (i) => ['--add', '-g', '1000', i, 'g'] },
  { label: 'refused: empty name', args: (i) => ['--add', i, ''] },
  { label: 'refused: no action', args: (i) => [i, 'a'] },
  { label: 'refused: -g without --add', args: (i) => ['--remove', '-g', '64k', i, 'a'] },
  { label: 'refused: -b without --merge', args: (i) => ['--add', '-b', other, i, 'x'] },
  { label: 'refused: one operand', args: (i) => ['--add', i] },
  { label: 'refused: merge of different sizes', args: (i) => ['--merge', 'src', '-b', smaller, i, 'a'] },
  { label: 'refused: merge source missing', args: (i) => ['--merge', 'nope', i, 'a'] },
  { label: 'second action fails after the first is stored', args: (i) => ['--remove', '--clear', i, 'a'] },
];

describe('qcow bitmap as qemu-img bitmap', () => {
  it.each(cases)('$label', async ({ label, args, maps }) => {
    const tag = label.replace(/[^a-z0-9]+/gi, '-');
    const { ours, theirs, outcome } = both(base, args, tag);
    expect(outcome[0]).toEqual(outcome[1]);
    expect(bitmapsOf(ours)).toEqual(bitmapsOf(theirs));
    expectClean(ours);
    for (const name of maps ?? []) {
      expect(await dirtyMap(ours, name, dir.path('a.sock')), `dirty map of ${name}`).toBe(await dirtyMap(theirs, name, dir.path('b.sock')));
    }
  });

  it('removing the last bitmap drops the extension and the autoclear bit, as qemu-img', () => {
    const { ours, theirs } = both(smaller, (i) => ['--remove', i, 'src'], 'last');
    expect(bitmapsOf(ours)).toBeNull();
    expect(run('od', ['-A', 'n', '-t', 'x1', '-j', '88', '-N', '8', ours]).stdout).toBe(run('od', ['-A', 'n', '-t', 'x1', '-j', '88', '-N', '8', theirs]).stdout);
    expectClean(ours);
  });

  it('snapshot -a is refused while the image has bitmaps, with qemu-img message', () => {
    const image = dir.path('snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
    qemuImg(['snapshot', '-c', 's1', image]);
    qemuImg(['bitmap', '--add', '--disable', image, 'b']);
    const ours = qcow(['snapshot', '-a', 's1', image]);
    const theirs = run('qemu-img', ['snapshot', '-a', 's1', image]);
    expect([ours.status, ours.stderr.replace(/^qcow: /, '')]).toEqual([theirs.status, theirs.stderr.replace(/^qemu-img: /, '')]);
  });

  it('refuses a v2 image and a raw one, exit 1', () => {
    const v2 = dir.path('v2.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', v2, '1M']);
    const result = qcow(['bitmap', '--add', v2, 'b']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Cannot store dirty bitmaps in qcow2 v2 files/);
    const raw = dir.path('r.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
    expect(qcow(['bitmap', '--add', '-f', 'raw', raw, 'b']).status).toBe(1);
  });
});
