import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type RunResult, type Scratch } from '@q/test-support';
import { baseImages } from './base-images.js';
import { damages } from './damage.js';
import { ImageEditor } from './image-editor.js';

/**
 * `qcow check` against `qemu-img check` on the same damaged image: the same exit code, the same verdict on stdout
 * (human and JSON), the same diagnostics on stderr. Then each repairs its own copy (`-r leaks`, `-r all`): the
 * same report, and qemu-img check must judge both repaired images alike, and they must read the same.
 */

let s: Scratch;
const built = new Map<string, string>();

beforeAll(() => {
  s = scratch('check-vs-qemu-');
});
afterAll(() => s.cleanup());

function baseDir(index: number): string {
  const base = baseImages[index]!;
  let dir = built.get(base.name);
  if (dir === undefined) {
    dir = s.path(`base-${index}`);
    mkdirSync(dir);
    base.build(dir);
    built.set(base.name, dir);
  }
  return dir;
}

/** qemu-img's stderr without its program name prefix; ours without "qcow: ". */
function diagnostics(r: RunResult): string[] {
  return r.stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/^(qemu-img|qcow): /, ''));
}

function copyOf(from: string, name: string): string {
  const dir = s.path(name);
  cpSync(from, dir, { recursive: true });
  return dir;
}

function both(dir: string, args: string[]): { qemu: RunResult; mine: RunResult; qemuDir: string; mineDir: string } {
  const qemuDir = copyOf(dir, `${dir.split('/').pop()}-qemu-${args.join('')}`);
  const mineDir = copyOf(dir, `${dir.split('/').pop()}-mine-${args.join('')}`);
  const qemu = run('qemu-img', ['check', ...args, 'img.qcow2'], { cwd: qemuDir });
  const mine = qcow(['check', ...args, 'img.qcow2'], { cwd: mineDir });
  return { qemu, mine, qemuDir, mineDir };
}

let caseNumber = 0;

describe('qcow check vs qemu-img check', () => {
  baseImages.forEach((base, baseIndex) => {
    for (const damage of damages) {
      if (damage.applies !== undefined && !damage.applies(base.traits)) continue;
      it(`${base.name}: ${damage.name}`, () => {
        const dir = copyOf(baseDir(baseIndex), `case-${caseNumber++}`);
        const image = new ImageEditor(join(dir, 'img.qcow2'));
        expect(damage.apply(image), 'the recipe found nothing to damage (fix its applies filter)').toBe(true);
        image.save();

        for (const output of [['--output=json'], []]) {
          const { qemu, mine } = both(dir, output);
          expect(mine.status, `exit code (${output.join(' ') || 'human'})\nqemu: ${qemu.stderr}\nqcow: ${mine.stderr}`).toBe(qemu.status);
          expect(mine.stdout).toBe(qemu.stdout);
          expect(diagnostics(mine)).toEqual(diagnostics(qemu));
        }

        for (const mode of ['leaks', 'all']) {
          const { qemu, mine, qemuDir, mineDir } = both(dir, ['-r', mode]);
          expect(mine.status, `exit code of -r ${mode}\nqemu: ${qemu.stderr}\nqcow: ${mine.stderr}`).toBe(qemu.status);
          expect(mine.stdout).toBe(qemu.stdout);
          if (base.traits.bitmaps === true) {
            // qemu-img check -r opens the image read-write, so QEMU stores the persistent bitmaps again as it
            // closes it: new bitmap clusters (allocated over clusters whose refcount the repair left at 0, or
            // refused by its overlap check). We leave bitmaps alone; only the repair itself compares.
            const qemuOwn = diagnostics(qemu).filter((line) => !/persistent bitmaps|Marking image as corrupt/.test(line));
            expect(diagnostics(mine)).toEqual(qemuOwn);
            const judge = run('qemu-img', ['check', 'img.qcow2'], { cwd: mineDir });
            if (mode === 'all' && qemu.status === 0) expect(judge.status, `qemu-img check after qcow check -r all: ${judge.stdout}${judge.stderr}`).toBe(0);
            continue;
          }
          expect(diagnostics(mine)).toEqual(diagnostics(qemu));
          // qemu-img judges both repaired images the same way, and they hold the same guest data.
          const judgeQemu = run('qemu-img', ['check', '--output=json', 'img.qcow2'], { cwd: qemuDir });
          const judgeMine = run('qemu-img', ['check', '--output=json', 'img.qcow2'], { cwd: mineDir });
          expect(judgeMine.status, `qemu-img check after qcow check -r ${mode}: ${judgeMine.stdout}${judgeMine.stderr}`).toBe(judgeQemu.status);
          expect(judgeMine.stdout).toBe(judgeQemu.stdout);
          if (judgeQemu.status === 0) {
            const cmp = run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', join(qemuDir, 'img.qcow2'), join(mineDir, 'img.qcow2')], { cwd: mineDir });
            expect(cmp.status, `guest data after -r ${mode}: ${cmp.stdout}${cmp.stderr}`).toBe(0);
          }
        }
      });
    }
  });
});
