import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratch, type Scratch } from '@q/test-support';
import { prepare, sameBytes, twin, type Setup } from './chain-twins.js';

// Bad rebase and commit requests: qcow must refuse what qemu-img 7.2 refuses, with its exit code and its message
// (program name aside), in one line plus, for usage errors, the usage line; and must leave every file as it was.
// qemu-img itself writes before two of its refusals (a safe rebase without -F, and of a raw image, copies data,
// then fails to change the header); qcow refuses first, so only the messages are compared there.

const setup: Setup = {
  dirs: ['d'],
  create: [
    ['-f', 'qcow2', 'base.qcow2', '4M'],
    ['-f', 'qcow2', 'new.qcow2', '4M'],
    ['-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'],
    ['-f', 'qcow2', 'solo.qcow2', '4M'],
    ['-f', 'raw', 'disk.raw', '4M'],
    ['-f', 'qcow2', '-u', '-b', 'gone.qcow2', '-F', 'qcow2', 'orphan.qcow2', '4M'],
    ['-f', 'qcow2', 'd/alone.qcow2', '4M'],
  ],
  io: [
    ['base.qcow2', 'write -P 0x11 0 1M'],
    ['new.qcow2', 'write -P 0x12 0 2M'],
    ['top.qcow2', 'write -P 0x13 64k 64k'],
  ],
};

const FILES = ['base.qcow2', 'new.qcow2', 'top.qcow2', 'solo.qcow2', 'disk.raw', 'orphan.qcow2', 'd/alone.qcow2'];

interface Refusal {
  name: string;
  args: string[];
  /** Compare only the start of the first line (the store words a missing file its own way after it). */
  prefix?: string;
  /** qemu-img writes before refusing: do not hold qemu-img's copy to the input. */
  qemuWrites?: boolean;
}

const refusals: Refusal[] = [
  { name: 'commit: an image without a backing file', args: ['commit', 'solo.qcow2'] },
  { name: 'commit: a raw image', args: ['commit', '-f', 'raw', 'disk.raw'] },
  { name: 'commit: -b that is not in the chain', args: ['commit', '-b', 'new.qcow2', 'top.qcow2'] },
  { name: 'commit: -b on an image without a backing file', args: ['commit', '-b', 'base.qcow2', 'solo.qcow2'] },
  { name: 'commit: -b naming the image itself', args: ['commit', '-b', 'top.qcow2', 'top.qcow2'] },
  { name: 'commit: a missing backing file', args: ['commit', 'orphan.qcow2'], prefix: "qemu-img: Could not open 'orphan.qcow2': Could not open backing file" },
  { name: 'commit: no file', args: ['commit'] },
  { name: 'commit: two files', args: ['commit', 'top.qcow2', 'solo.qcow2'] },
  { name: 'commit: -t bogus', args: ['commit', '-t', 'bogus', 'top.qcow2'] },
  { name: 'commit: -f bogus', args: ['commit', '-f', 'bogus', 'top.qcow2'] },
  { name: 'rebase: no -b without -u', args: ['rebase', 'top.qcow2'] },
  { name: 'rebase: -b without -F', args: ['rebase', '-b', 'new.qcow2', 'top.qcow2'], qemuWrites: true },
  { name: 'rebase: -u -b without -F', args: ['rebase', '-u', '-b', 'new.qcow2', 'top.qcow2'] },
  { name: 'rebase: -F bogus', args: ['rebase', '-b', 'new.qcow2', '-F', 'bogus', 'top.qcow2'] },
  { name: 'rebase: -f bogus', args: ['rebase', '-f', 'bogus', '-b', 'new.qcow2', '-F', 'qcow2', 'top.qcow2'] },
  { name: 'rebase: -t bogus', args: ['rebase', '-t', 'bogus', '-b', 'new.qcow2', '-F', 'qcow2', 'top.qcow2'] },
  { name: 'rebase: a new backing file that does not exist (safe mode)', args: ['rebase', '-b', 'nope.qcow2', '-F', 'qcow2', 'top.qcow2'] },
  { name: 'rebase: a new backing file named relative to the working directory, not the overlay', args: ['rebase', '-b', 'base.qcow2', '-F', 'qcow2', 'd/alone.qcow2'] },
  { name: "rebase: a new backing file not in -F's format", args: ['rebase', '-b', 'disk.raw', '-F', 'qcow2', 'top.qcow2'] },
  { name: 'rebase: the overlay as its own new backing file (its lock)', args: ['rebase', '-b', 'top.qcow2', '-F', 'qcow2', 'top.qcow2'] },
  { name: 'rebase: a missing old backing file (safe mode)', args: ['rebase', '-b', 'new.qcow2', '-F', 'qcow2', 'orphan.qcow2'], prefix: "qemu-img: Could not open 'orphan.qcow2': Could not open backing file" },
  { name: 'rebase: a raw image (-u)', args: ['rebase', '-f', 'raw', '-u', '-b', 'new.qcow2', '-F', 'qcow2', 'disk.raw'] },
  { name: 'rebase: a raw image (safe)', args: ['rebase', '-f', 'raw', '-b', 'new.qcow2', '-F', 'qcow2', 'disk.raw'], qemuWrites: true },
  { name: 'rebase: no file', args: ['rebase', '-b', 'new.qcow2', '-F', 'qcow2'] },
];

describe('rebase and commit refusals, as qemu-img', () => {
  let s: Scratch;
  let input: string;
  beforeAll(() => {
    s = scratch('write-chain-bad-');
    input = prepare(s, setup);
  });
  afterAll(() => s.cleanup());

  refusals.forEach((r) => {
    it(r.name, () => {
      const t = twin(s, input, r.args);
      expect(t.theirs.status, 'qemu-img refuses this').not.toBe(0);
      expect(t.ours.status, `qcow: ${t.ours.stdout}${t.ours.stderr}`).toBe(t.theirs.status);
      expect(t.ours.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
      const theirs = t.theirs.stderr.split('\n')[0]!;
      const ours = t.ours.stderr.split('\n')[0]!.replace(/^qcow:/, 'qemu-img:');
      if (r.prefix !== undefined) {
        expect(theirs.startsWith(r.prefix), theirs).toBe(true);
        expect(ours.startsWith(r.prefix), ours).toBe(true);
      } else expect(ours).toBe(theirs);
      for (const file of FILES) {
        expect(sameBytes(join(t.mine, file), join(input, file)), `qcow changed ${file}`).toBe(true);
        if (r.qemuWrites !== true) expect(sameBytes(join(t.qemu, file), join(input, file)), `qemu-img changed ${file}`).toBe(true);
      }
    });
  });
});
