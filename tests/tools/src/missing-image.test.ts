import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';

// An image that does not exist, for every command that opens one: qemu-img's message (the image layer and the file
// layer each name the file, then strerror's text) and its exit code.

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-missing-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('base.qcow2'), '1M']);
});
afterAll(() => s.cleanup());

const commands: string[][] = [
  ['info', 'missing.qcow2'],
  ['map', 'missing.qcow2'],
  ['check', 'missing.qcow2'],
  ['commit', 'missing.qcow2'],
  ['rebase', '-u', '-b', 'x', '-F', 'raw', 'missing.qcow2'],
  ['resize', 'missing.qcow2', '1G'],
  ['snapshot', '-l', 'missing.qcow2'],
  ['amend', '-o', 'compat=1.1', 'missing.qcow2'],
  ['measure', '-O', 'qcow2', 'missing.qcow2'],
  ['compare', 'base.qcow2', 'missing.qcow2'],
  ['convert', '-O', 'raw', 'missing.qcow2', 'out.raw'],
  ['bench', '-c', '1', 'missing.qcow2'],
  ['dd', 'if=missing.qcow2', 'of=out.raw'],
];

describe('a missing image, as qemu-img words it', () => {
  for (const args of commands) {
    it(args.join(' '), () => {
      const theirs = run('qemu-img', args, { cwd: s.dir });
      const mine = qcow(args, { cwd: s.dir });
      expect(mine.status).toBe(theirs.status);
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:'));
    });
  }
});
