import { copyFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { expectCleanAndEqual, normalise } from './normalise.js';

// `qcow io` with commands on standard input (and with -c) against qemu-io on copies of the same image: the same
// stdout (prompts included, timing numbers aside), the same exit code, then qemu-img check and compare of the two
// images. When qemu-io prints an aio request's lines depends on timing (whichever command happens to run its event
// loop next), so every aio request here is followed by aio_flush or by the end. qemu-io prints "Parsing error" lines on stdout; qcow prints every error on stderr, so those lines are
// compared across the streams.

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-io-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('base.qcow2'), '3M']);
  qemuIo(s.path('base.qcow2'), ['write -P 5 1M 64k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', s.path('top.qcow2')]);
  qemuIo(s.path('top.qcow2'), ['write -P 1 0 100k', 'write -z 256k 64k', 'write -P 2 2M 512']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=16k,extended_l2=on', s.path('small.qcow2'), '5M']);
  qemuImg(['create', '-q', '-f', 'raw', s.path('plain.raw'), '1M']);
  writeFileSync(s.path('pattern.bin'), 'abcdefghij');
});
afterAll(() => s.cleanup());

/** Complaints qemu-io prints on stdout (qcow io prints them on stderr): compared across the streams. */
const PARSING = /(Parsing error: |Only one of -z, -P, and -s )[^\n]*\n/g;

interface IoCase {
  name: string;
  image: string;
  input: string[];
  flags?: string[];
}

const cases: IoCase[] = [
  { name: 'a read, a write, an unknown command', image: 'top.qcow2', input: ['read 0 512', 'write 0 512', 'bogus', 'read -P 0xcd 0 512'] },
  { name: 'pattern mismatch fails the session', image: 'top.qcow2', input: ['read -P 0x11 0 512', 'read 0 512'] },
  { name: 'info, length, map, alloc over a chain with zero clusters', image: 'top.qcow2', input: ['info', 'length', 'map', 'alloc 0 3M', 'alloc 1M 64k', 'alloc 256k 64k', 'alloc 100k', 'alloc 3M', 'alloc 2M 1'] },
  { name: 'info of extended L2 with 16k clusters', image: 'small.qcow2', input: ['info', 'length', 'map'] },
  { name: 'info, map and length of raw', image: 'plain.raw', flags: ['-f', 'raw'], input: ['info', 'map', 'length', 'write -P 9 4k 4k', 'read -P 9 4k 4k'] },
  { name: 'quit stops reading', image: 'top.qcow2', input: ['quit', 'write 0 512'] },
  { name: 'aio requests report at aio_flush and at exit', image: 'top.qcow2', input: ['aio_write -P 0x33 64k 4k', 'aio_flush', 'aio_read -P 0x33 64k 4k', 'aio_flush', 'aio_read -P 0x34 64k 4k', 'aio_flush', 'aio_write -q 0 512', 'aio_flush', 'aio_read -v 64k 32', 'aio_flush', 'aio_write 8k 512 1k', 'aio_flush', 'read 0 512', 'aio_write -z 1M 4k'] },
  { name: 'vectored writes and reads', image: 'top.qcow2', input: ['writev -P 0x44 128k 512 1k 4k', 'readv -P 0x44 128k 512 1k 4k', 'readv -P 0x44 128k 5632', 'readv -v 128k 16 16', 'writev -q 1M 4k 4k'] },
  { name: 'truncate grows, refuses what qemu-io refuses', image: 'top.qcow2', input: ['truncate 5M', 'length', 'truncate 100000', 'truncate -m bogus 1M', 'truncate', 'length 1', 'alloc', 'alloc x', 'read 0'] },
  { name: 'help for one command that does not exist', image: 'top.qcow2', input: ['help bogus'] },
  { name: 'read-only image refuses writes', image: 'top.qcow2', flags: ['-r'], input: ['write 0 512', 'aio_write 0 512', 'writev 0 512', 'truncate 4M', 'read -P 1 0 4k'] },
  { name: 'no input at all', image: 'top.qcow2', input: [] },
  {
    name: 'pattern files (-s) and machine-parsable statistics (-C)',
    image: 'top.qcow2',
    input: ['write -s pattern.bin 0 100', 'read -v 0 112', 'write -C 4k 4k', 'read -C 4k 512', 'write -q -C 0 512', 'readv -C 0 512 512', 'aio_write -C 8k 512', 'aio_flush', 'write -s missing.bin 0 64', 'write -s pattern.bin -P 3 0 64', 'write -z -s pattern.bin 0 64'],
  },
];

describe('qcow io from standard input vs qemu-io', () => {
  for (const c of cases) {
    it(c.name, () => {
      copyFileSync(s.path(c.image), s.path(`q-${c.image}`));
      copyFileSync(s.path(c.image), s.path(`r-${c.image}`));
      const input = c.input.map((line) => `${line}\n`).join('');
      const q = run('qemu-io', [...(c.flags ?? []), `q-${c.image}`], { cwd: s.dir, input });
      const r = qcow(['io', ...(c.flags ?? []), `r-${c.image}`], { cwd: s.dir, input });
      expect(r.status, r.stderr).toBe(q.status);
      expect(normalise(r.stdout)).toBe(normalise(q.stdout.replace(PARSING, '')));
      const qErrors = [...normalise(q.stderr).split('\n'), ...(q.stdout.match(PARSING) ?? []).map((line) => line.trim())].filter((line) => line !== '' && !line.startsWith('WARNING') && !line.startsWith(' ')).sort();
      const rErrors = normalise(r.stderr).split('\n').filter((line) => line !== '').sort();
      expect(rErrors).toEqual(qErrors);
      if (c.image.endsWith('.qcow2')) {
        expectCleanAndEqual(s.path(`r-${c.image}`), s.path(`q-${c.image}`));
        expect(JSON.parse(qemuImg(['info', '--output=json', s.path(`r-${c.image}`)]))['virtual-size']).toBe(JSON.parse(qemuImg(['info', '--output=json', s.path(`q-${c.image}`)]))['virtual-size']);
      } else {
        qemuImg(['compare', '-f', 'raw', '-F', 'raw', s.path(`r-${c.image}`), s.path(`q-${c.image}`)]);
      }
    });
  }

  it('the same commands given with -c print the same lines without prompts', () => {
    const commands = ['write -P 7 0 64k', 'aio_write -P 8 64k 4k', 'aio_flush', 'length', 'alloc 0 128k', 'map', 'readv -P 7 0 4k 4k'];
    copyFileSync(s.path('top.qcow2'), s.path('qc.qcow2'));
    copyFileSync(s.path('top.qcow2'), s.path('rc.qcow2'));
    const q = run('qemu-io', [...commands.flatMap((c) => ['-c', c]), 'qc.qcow2'], { cwd: s.dir });
    const r = qcow(['io', ...commands.flatMap((c) => ['-c', c]), 'rc.qcow2'], { cwd: s.dir });
    expect(r.status, r.stderr).toBe(q.status);
    expect(normalise(r.stdout)).toBe(normalise(q.stdout));
    expectCleanAndEqual(s.path('rc.qcow2'), s.path('qc.qcow2'));
  });

  it("help lists qemu-io's lines for the commands qcow has, in its order", () => {
    const q = run('qemu-io', ['-c', 'help', s.path('top.qcow2')]);
    const r = qcow(['io', '-c', 'help', s.path('top.qcow2')]);
    expect(r.status).toBe(0);
    const ours = r.stdout.split('\n');
    const theirs = q.stdout.split('\n');
    // read and write list only the flags qcow takes (no -a, -c, -s source_file).
    const differing = new Set(['read', 'write', 'aio_read', 'aio_write']);
    for (const line of ours.filter((l) => l.includes(' -- '))) {
      if (!differing.has(line.split(' ')[0]!)) expect(theirs).toContain(line);
    }
    expect(ours.slice(-3)).toEqual(theirs.slice(-3));
  });
});
