import { afterAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qemuImg, qemuIo, run, scratch } from '@q/test-support';
import { dirtyMap } from './dirty-map.js';

/**
 * `qcow convert --bitmaps` (issue 14) against `qemu-img convert --bitmaps` on the same source: the same bitmaps in
 * `qemu-img info` (names, granularities, flags, order), the same dirty maps through qemu-nbd -B, `qemu-img check`
 * clean; and qemu-img's refusals (raw on either side, an inconsistent bitmap, --skip-broken-bitmaps alone).
 */
const dir = scratch('qcow-convert-bitmaps-');
afterAll(() => dir.cleanup());

function qcow(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return run(process.execPath, [QCOW_CLI, ...args]);
}

/** qemu-img info without the lines that name the file or measure it. */
function infoOf(image: string): string {
  return qemuImg(['info', '-U', image])
    .split('\n')
    .filter((line) => !/^(image|disk size):/.test(line))
    .join('\n');
}

/** A source with three bitmaps (enabled at two granularities, one disabled) and writes before and after them. */
function source(name: string): string {
  const image = dir.path(`${name}.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
  qemuIo(image, ['write -P 1 0 4M']);
  qemuImg(['bitmap', '--add', image, 'fine']);
  qemuImg(['bitmap', '--add', '-g', '16k', image, 'small']);
  qemuImg(['bitmap', '--add', '--disable', image, 'frozen']);
  qemuIo(image, ['write -P 2 10M 100k', 'write -z 20M 1M', 'write -P 3 63M 4k']);
  return image;
}

describe('qcow convert --bitmaps, as qemu-img convert --bitmaps', () => {
  it('copies every bitmap with its bits, flags and granularity', async () => {
    const src = source('src');
    const ours = dir.path('ours.qcow2');
    const theirs = dir.path('theirs.qcow2');
    qemuImg(['convert', '--bitmaps', '-O', 'qcow2', src, theirs]);
    const result = qcow(['convert', '--bitmaps', '-O', 'qcow2', src, ours]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(infoOf(ours)).toBe(infoOf(theirs));
    expect(run('qemu-img', ['check', ours]).status).toBe(0);
    for (const name of ['fine', 'small', 'frozen']) {
      expect(await dirtyMap(ours, name, dir.path('a.sock')), `dirty map of '${name}'`).toBe(await dirtyMap(theirs, name, dir.path('b.sock')));
    }
  });

  it('refuses or skips as qemu-img does', () => {
    const src = source('refusals');
    const raw = dir.path('plain.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
    const cases: Array<{ args: string[]; message: string }> = [
      { args: ['--bitmaps', '-O', 'raw', src, dir.path('x.raw')], message: "Format driver 'raw' does not support bitmaps" },
      { args: ['--bitmaps', '-O', 'qcow2', '-f', 'raw', raw, dir.path('x1.qcow2')], message: 'Source lacks bitmap support' },
      { args: ['--skip-broken-bitmaps', '-O', 'qcow2', src, dir.path('x2.qcow2')], message: 'Use of --skip-broken-bitmaps requires --bitmaps' },
    ];
    for (const { args, message } of cases) {
      const theirs = run('qemu-img', ['convert', ...args]);
      const ours = qcow(['convert', ...args]);
      expect(theirs.stderr).toContain(message);
      expect(ours.stderr.trim()).toBe(`qcow: ${message}`);
      expect(ours.status).toBe(theirs.status);
    }
  });

  it('refuses an inconsistent bitmap unless --skip-broken-bitmaps, which leaves it out', () => {
    const src = source('broken');
    // A writer killed while it maintains the bitmaps leaves them in_use (inconsistent).
    run('qemu-io', ['-c', 'write 0 4k', '-c', 'abort', src]);
    expect(qemuImg(['info', src])).toMatch(/in-use/);
    const refused = qcow(['convert', '--bitmaps', '-O', 'qcow2', src, dir.path('b1.qcow2')]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^qcow: Cannot copy inconsistent bitmap '\w+'\nTry --skip-broken-bitmaps/);
    const theirs = run('qemu-img', ['convert', '--bitmaps', '--skip-broken-bitmaps', '-O', 'qcow2', src, dir.path('b2-qemu.qcow2')]);
    const ours = qcow(['convert', '--bitmaps', '--skip-broken-bitmaps', '-O', 'qcow2', src, dir.path('b2.qcow2')]);
    expect(ours.status).toBe(0);
    expect(ours.stderr.replaceAll('qcow: ', '')).toBe(theirs.stderr.replaceAll('qemu-img: ', ''));
    expect(infoOf(dir.path('b2.qcow2'))).toBe(infoOf(dir.path('b2-qemu.qcow2')));
  });
});
