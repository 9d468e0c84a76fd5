import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { normalise } from './normalise.js';

// A raw image opened for writing without -f: qemu-img, qemu-io and qemu-nbd warn that its format was guessed and
// refuse writes that would give its first sector another format's header (a guest could otherwise make the next
// probe open its disk as a qcow2 image with any host file as backing file). Both tools run on copies of one file.

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-probed-raw-');
  qemuImg(['create', '-q', '-f', 'raw', s.path('disk.raw'), '1M']);
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('header.qcow2'), '1M']);
  writeFileSync(s.path('header.bin'), readFileSync(s.path('header.qcow2')).subarray(0, 512));
});
afterAll(() => s.cleanup());

/** Runs `args` with qemu-img (or qemu-io) and with qcow on copies of disk.raw; both outputs, names normalised. */
function sideBySide(tool: 'qemu-img' | 'qemu-io', args: (disk: string) => string[]) {
  const results = (['theirs', 'mine'] as const).map((tag) => {
    const disk = `${tag}.raw`;
    copyFileSync(s.path('disk.raw'), s.path(disk));
    const argv = args(disk);
    const result = tag === 'theirs' ? run(tool, argv, { cwd: s.dir }) : qcow(tool === 'qemu-io' ? ['io', ...argv] : argv, { cwd: s.dir });
    return { ...result, stdout: normalise(result.stdout, { [disk]: 'DISK' }), stderr: normalise(result.stderr, { [disk]: 'DISK' }), disk };
  });
  return { theirs: results[0]!, mine: results[1]! };
}

describe('a raw image whose format was guessed, opened for writing', () => {
  for (const args of [
    (disk: string) => ['resize', disk, '2M'],
    (disk: string) => ['bench', '-w', '-c', '1', '-q', disk],
    (disk: string) => ['snapshot', '-l', disk],
    (disk: string) => ['info', disk],
    (disk: string) => ['snapshot', '-c', 'snap', disk],
    (disk: string) => ['snapshot', '-d', 'snap', disk],
    (disk: string) => ['check', '-r', 'all', disk],
  ]) {
    it(`${args('DISK').join(' ')}: the warning when writing, as qemu-img prints it`, () => {
      const { theirs, mine } = sideBySide('qemu-img', args);
      expect(mine.stderr).toBe(theirs.stderr);
      expect(mine.status).toBe(theirs.status);
    });
  }

  it('snapshot -a: refused in qemu-img\'s words (qemu-img prints its warning a second time, qcow once)', () => {
    const { theirs, mine } = sideBySide('qemu-img', (disk) => ['snapshot', '-a', 'snap', disk]);
    expect(mine.status).toBe(theirs.status);
    expect(mine.stderr.split('\n').slice(-2)).toEqual(theirs.stderr.split('\n').slice(-2));
  });

  it('io: a write that would put a qcow2 header in the first sector fails with EPERM; the file is unchanged', () => {
    const { theirs, mine } = sideBySide('qemu-io', (disk) => ['-c', 'write -s header.bin 0 512', '-c', 'write -s header.bin 512 512', disk]);
    // qemu-io prints the failure on stdout, qcow io on stderr (README, known differences).
    expect(mine.stderr).toBe(theirs.stderr + 'write failed: Operation not permitted\n');
    expect(theirs.stdout).toContain('write failed: Operation not permitted\n');
    expect(mine.stdout).toBe(theirs.stdout.replace('write failed: Operation not permitted\n', ''));
    expect(readFileSync(s.path(mine.disk)).equals(readFileSync(s.path(theirs.disk)))).toBe(true);
    expect(JSON.parse(qemuImg(['info', '--output=json', s.path(mine.disk)])).format).toBe('raw');
  });

  it('io -f raw: the same write is allowed, and the file is then a qcow2 image for both', () => {
    const { theirs, mine } = sideBySide('qemu-io', (disk) => ['-f', 'raw', '-c', 'write -s header.bin 0 512', disk]);
    expect(mine.status).toBe(0);
    expect(mine.stderr).toBe(theirs.stderr);
    expect(readFileSync(s.path(mine.disk)).equals(readFileSync(s.path(theirs.disk)))).toBe(true);
  });
});

describe('probing, as QEMU probes', () => {
  /** A 1 MiB file whose first bytes are `head` (latin1). */
  function fileStarting(name: string, head: string): string {
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
    writeFileSync(s.path(name), bytes);
    return name;
  }

  it("the qcow magic with version 0 is raw (info's JSON and check's refusal as qemu-img's)", () => {
    const name = fileStarting('magic-v0.img', 'QFI\xfb\0\0\0\0');
    for (const args of [['info', '--output=json', name], ['check', name]]) {
      const theirs = run('qemu-img', args, { cwd: s.dir });
      const mine = qcow(args, { cwd: s.dir });
      expect(mine.stdout).toBe(theirs.stdout);
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:'));
      expect(mine.status).toBe(theirs.status);
    }
  });

  it("another format's header is refused, not read as raw", () => {
    const name = fileStarting('vmdk-like.img', 'KDMV');
    const mine = qcow(['info', name], { cwd: s.dir });
    expect(mine.status).toBe(1);
    expect(mine.stderr).toContain("Unknown or unsupported format 'vmdk'");
    expect(qcow(['info', '-f', 'raw', name], { cwd: s.dir }).status).toBe(0);
  });
});
