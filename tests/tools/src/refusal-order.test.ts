import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';

// A line with a mistake, or several, gets qemu-img's message for the first one qemu-img finds: convert judges -S,
// -m, -l and -r in command-line order, then -n/--bitmaps/-T, then opens its sources, then judges the output (-O,
// -o, -B, -c, -t). An unknown -f names the file ("Could not open 'F': Unknown driver 'X'") in every command.
// Each line runs under both tools; stderr and exit code must match.

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-refusal-order-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('a.qcow2'), '1M']);
  // A qcow2 header of a version nobody writes: every command refuses it at open.
  const v7 = readFileSync(s.path('a.qcow2'));
  v7.writeUInt32BE(7, 4);
  writeFileSync(s.path('v7.qcow2'), v7);
});
afterAll(() => s.cleanup());

function expectSameRefusal(args: string[]): void {
  const theirs = run('qemu-img', args, { cwd: s.dir });
  const mine = qcow(args, { cwd: s.dir });
  expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-img:/gm, 'qcow:').replace("'qemu-img --help'", "'qcow --help'"));
  expect(mine.status).toBe(theirs.status);
}

describe('convert: the first mistake qemu-img finds is the one reported', () => {
  const lines: string[][] = [
    ['-O', 'raw', '-S', '3', '-m', '99', 'a.qcow2', 'o'],
    ['-O', 'raw', '-m', '99', '-S', '3', 'a.qcow2', 'o'],
    ['-O', 'raw', '-m', 'abc', 'a.qcow2', 'o'],
    ['-O', 'raw', '-m', '4x', 'a.qcow2', 'o'],
    ['-O', 'raw', '-m', '0x11', 'a.qcow2', 'o'],
    ['-O', 'raw', '-T', 'foo', '-S', '3', 'a.qcow2', 'o'],
    ['-O', 'raw', '-T', 'foo', 'missing', 'o'],
    ['-O', 'qcow2', '-m', '0', '-l', 'snapshot.x=1', 'a.qcow2', 'o'],
    ['-O', 'qcow2', '-l', 'snapshot.x=1', '-m', '0', 'a.qcow2', 'o'],
    ['-O', 'raw', '-l', 'foo=bar', 'a.qcow2', 'o'],
    ['-O', 'foo', 'missing', 'o'],
    ['-O', 'foo', 'a.qcow2', 'o'],
    ['-O', 'foo', '-l', 'nosuch', 'a.qcow2', 'o'],
    ['-O', 'raw', '-c', 'missing', 'o'],
    ['-O', 'raw', '-c', '-l', 'nosuch', 'a.qcow2', 'o'],
    ['-O', 'raw', '-B', 'a.qcow2', 'missing', 'o'],
    ['-O', 'raw', '-o', 'cluster_size=4k', 'missing', 'o'],
    ['-O', 'raw', '-c', '-B', 'x', 'a.qcow2', 'o'],
    ['-O', 'raw', '-c', '-t', 'foo', 'a.qcow2', 'o'],
    ['-O', 'raw', '-t', 'foo', 'missing', 'o'],
    ['-O', 'raw', '-t', 'foo', 'a.qcow2', 'o'],
    ['-f', 'foo', 'a.qcow2', 'o'],
  ];
  for (const line of lines) it(line.join(' '), () => expectSameRefusal(['convert', ...line]));

  it('accepts what strtol accepts for -m (" 4", "017", "+4")', () => {
    for (const value of [' 4', '017', '+4']) {
      const result = qcow(['convert', '-O', 'raw', '-m', value, 'a.qcow2', 'ok.raw'], { cwd: s.dir });
      expect(result.status, `${value}: ${result.stderr}`).toBe(0);
    }
  });
});

describe("an unknown -f: qemu-img's words in every command", () => {
  const commands: string[][] = [
    ['info', '-f', 'foo', 'a.qcow2'],
    ['info', '-f', 'foo', 'missing'],
    ['map', '-f', 'foo', 'a.qcow2'],
    ['check', '-f', 'foo', 'a.qcow2'],
    ['compare', '-f', 'foo', 'a.qcow2', 'a.qcow2'],
    ['commit', '-f', 'foo', 'a.qcow2'],
    ['resize', '-f', 'foo', 'a.qcow2', '2M'],
    ['measure', '-f', 'foo', '-O', 'qcow2', 'a.qcow2'],
    ['bench', '-f', 'foo', '-c', '1', 'a.qcow2'],
    ['amend', '-f', 'foo', '-o', 'compat=1.1', 'a.qcow2'],
    ['dd', '-f', 'foo', 'if=a.qcow2', 'of=x'],
  ];
  for (const args of commands) it(args.join(' '), () => expectSameRefusal(args));

  it('measure -l: a parameter it does not know, in two lines', () => {
    expectSameRefusal(['measure', '-O', 'qcow2', '-l', 'snapshot.x=1', 'a.qcow2']);
  });
});

describe('an image whose header its format refuses: "Could not open \'F\': REASON" in every command', () => {
  const commands: string[][] = [
    ['info', 'v7.qcow2'],
    ['map', 'v7.qcow2'],
    ['compare', 'v7.qcow2', 'a.qcow2'],
    ['compare', 'a.qcow2', 'v7.qcow2'],
    ['convert', '-O', 'raw', 'v7.qcow2', 'out.raw'],
    ['convert', '-O', 'raw', 'a.qcow2', 'v7.qcow2', 'out.raw'],
    ['check', 'v7.qcow2'],
    ['snapshot', '-l', 'v7.qcow2'],
  ];
  for (const args of commands) it(args.join(' '), () => expectSameRefusal(args));

  it("io: qemu-io's \"can't open device F: REASON\"", () => {
    for (const name of ['v7.qcow2', 'missing.qcow2']) {
      const theirs = run('qemu-io', ['-c', 'read 0 512', name], { cwd: s.dir });
      const mine = qcow(['io', '-c', 'read 0 512', name], { cwd: s.dir });
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-io:/gm, 'qcow io:'));
      expect(mine.status).toBe(theirs.status);
    }
  });
});

describe("an option qemu-img's getopt cannot parse: its two lines, exit 1 (compare too)", () => {
  const lines: string[][] = [
    ['info', '-Z', 'a.qcow2'],
    ['info', '--foo=bar', 'a.qcow2'],
    ['info', '--force-share=on', 'a.qcow2'],
    ['info', 'a.qcow2', '--output'],
    ['convert', '-O'],
    ['compare', '-Z', 'a.qcow2', 'a.qcow2'],
    ['check', '-Z', 'a.qcow2'],
    ['map', '--nope', 'a.qcow2'],
  ];
  for (const args of lines) it(args.join(' '), () => expectSameRefusal(args));
});

describe('create: the size given twice, or malformed in -o', () => {
  for (const args of [
    ['create', '-f', 'raw', '-o', 'size=1M', 'twice.raw', '2M'],
    ['create', '-f', 'qcow2', '-o', 'size=abc', 'bad.qcow2'],
  ]) {
    it(args.join(' '), () => expectSameRefusal(args));
  }
});

// (info --backing-chain keeps these words too; qemu-img, which opens each layer by itself, names the failed layer
// alone, but every error here names the image it was given: tests/hostile.)
describe("a backing file that does not open: \"Could not open 'TOP': Could not open backing file: REASON\"", () => {
  beforeAll(() => {
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'nothere.qcow2', '-F', 'qcow2', s.path('orphan.qcow2'), '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'v7.qcow2', '-F', 'qcow2', s.path('over-v7.qcow2'), '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'orphan.qcow2', '-F', 'qcow2', s.path('over-orphan.qcow2'), '1M']);
  });
  for (const top of ['orphan.qcow2', 'over-v7.qcow2', 'over-orphan.qcow2']) {
    for (const args of [['map', top], ['convert', '-O', 'raw', top, 'out.raw'], ['compare', top, 'a.qcow2'], ['commit', top]]) {
      it(args.join(' '), () => expectSameRefusal(args));
    }
    it(`io ${top}`, () => {
      const theirs = run('qemu-io', ['-c', 'read 0 512', top], { cwd: s.dir });
      const mine = qcow(['io', '-c', 'read 0 512', top], { cwd: s.dir });
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-io:/gm, 'qcow io:'));
      expect(mine.status).toBe(theirs.status);
    });
  }
});

describe("io's pattern byte, as qemu-io reads it (strtol, 0 to 255)", () => {
  for (const pattern of ['255', '256', '-1', '0x1ff', 'abc', '0x10', '010', '+5', '1k']) {
    it(`write -P ${pattern}, then read -P ${pattern}`, () => {
      for (const command of ['write', 'read']) {
        const line = `${command} -P ${pattern} 0 512`;
        const theirs = run('qemu-io', ['-f', 'qcow2', '-c', line, 'a.qcow2'], { cwd: s.dir });
        const mine = qcow(['io', '-f', 'qcow2', '-c', line, 'a.qcow2'], { cwd: s.dir });
        // qemu-io prints its complaint on stdout, qcow io on stderr; the timing line differs.
        const firstLine = (result: { stdout: string; stderr: string }) => (result.stdout + result.stderr).split('\n')[0];
        expect(firstLine(mine)).toBe(firstLine(theirs));
        expect(mine.status).toBe(theirs.status);
      }
    });
  }
});

describe("usage mistakes: qemu-img's \"Try '... --help'\" line where it prints one, none where it does not", () => {
  const lines: string[][] = [
    ['compare', 'a.qcow2'],
    ['rebase', 'a.qcow2'],
    ['amend', 'a.qcow2'],
    ['info'],
    ['resize', 'a.qcow2'],
    ['snapshot', '-l', '-c', 'x', 'a.qcow2'],
    ['check', '-r', 'x', 'a.qcow2'],
    ['check', '--output=x', 'a.qcow2'],
    ['info', '--output=x', 'a.qcow2'],
    ['map', '--start-offset=abc', 'a.qcow2'],
    ['create', '-f', 'foo', 'x.img', '1M'],
    ['create', '-f', 'qcow2', 'x.img', '1Q'],
    ['bench', '-c', '-1', 'a.qcow2'],
    ['bench', '-c', 'abc', 'a.qcow2'],
    ['bench', '-d', '1k', '-c', '1', 'a.qcow2'],
    ['bench', '-s', 'abc', 'a.qcow2'],
    ['bench', '-S', 'abc', '-c', '1', 'a.qcow2'],
    ['bench', '--pattern=300', '-w', '-c', '1', 'a.qcow2'],
    ['bench', '-i', 'bogus', 'a.qcow2'],
    ['bench', '--flush-interval=2', '-c', '1', 'a.qcow2'],
    ['create', '-q', '-f', 'qcow2', 'x.img', '1M', 'extra'],
    // Both bitmaps missing: qemu-img names the one merged into.
    ['bitmap', '--merge', 'nosuch', 'a.qcow2', 'alsonot'],
  ];
  for (const args of lines) it(args.join(' '), () => expectSameRefusal(args));

  it('bench takes what qemu-img takes: -c 0, -c 0x10, --no-drain alone', () => {
    for (const args of [['-c', '0'], ['-c', '0x10'], ['--no-drain', '-c', '10']]) {
      const theirs = run('qemu-img', ['bench', ...args, 'a.qcow2'], { cwd: s.dir });
      const mine = qcow(['bench', ...args, 'a.qcow2'], { cwd: s.dir });
      expect(mine.status, mine.stderr).toBe(theirs.status);
      expect(mine.stdout.split('\n')[0]).toBe(theirs.stdout.split('\n')[0]);
    }
  });
});

describe("io's -t, -d and -i values, judged as qemu-io judges them", () => {
  for (const option of [['-t', 'bogus'], ['--cache=bogus'], ['-d', 'bogus'], ['--discard=bogus'], ['-i', 'bogus'], ['-t', 'none'], ['-d', 'unmap'], ['-i', 'threads']]) {
    it(option.join(' '), () => {
      const theirs = run('qemu-io', [...option, '-c', 'read 0 1', 'a.qcow2'], { cwd: s.dir });
      const mine = qcow(['io', ...option, '-c', 'read 0 1', 'a.qcow2'], { cwd: s.dir });
      expect(mine.stderr).toBe(theirs.stderr.replace(/^qemu-io:/gm, 'qcow io:'));
      expect(mine.status).toBe(theirs.status);
    });
  }
});
