import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { normalise } from './normalise.js';

// qcow create's strictness about backing files, `-o help` and every command's --help, against qemu-img 7.2.

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-create-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('b.qcow2'), '3M']);
  qemuImg(['create', '-q', '-f', 'raw', s.path('b.raw'), '2M']);
});
afterAll(() => s.cleanup());

/** Runs `create` with both tools (each on its own target name) and compares exit code, stdout and stderr. */
function sameAsQemuImg(args: string[]): { status: number } {
  const q = run('qemu-img', ['create', ...args.map((a) => a.replace('%o', 'q.qcow2'))], { cwd: s.dir });
  const r = qcow(['create', ...args.map((a) => a.replace('%o', 'r.qcow2'))], { cwd: s.dir });
  const names = { 'q.qcow2': 'OUT', 'r.qcow2': 'OUT' };
  expect(r.status, r.stderr).toBe(q.status);
  expect(normalise(r.stdout, names)).toBe(normalise(q.stdout, names));
  // qemu-img ends "Detected format of X." without a newline; qcow ends every message with one.
  expect(normalise(r.stderr, names).trimEnd()).toBe(normalise(q.stderr, names).trimEnd());
  expect(existsSync(s.path('r.qcow2'))).toBe(existsSync(s.path('q.qcow2')));
  return { status: r.status };
}

describe('qcow create -b as qemu-img 7.2', () => {
  const cases: Array<[string, string[], number]> = [
    ['-b without -F is refused, naming the probed format', ['-f', 'qcow2', '-b', 'b.qcow2', '%o'], 1],
    ['-b without -F, with a size', ['-f', 'qcow2', '-b', 'b.raw', '%o', '1M'], 1],
    ['-b without -F, with -u (nothing probed)', ['-f', 'qcow2', '-u', '-b', 'b.qcow2', '%o', '1M'], 1],
    ['-o backing_file without backing_fmt', ['-f', 'qcow2', '-o', 'backing_file=b.qcow2', '%o', '1M'], 1],
    ['a backing file that does not exist', ['-f', 'qcow2', '-b', 'nope.qcow2', '-F', 'qcow2', '%o', '1M'], 1],
    ['a backing file that does not exist, without -F', ['-f', 'qcow2', '-b', 'nope.qcow2', '%o', '1M'], 1],
    ['a missing backing file with -u needs a size', ['-f', 'qcow2', '-u', '-b', 'nope.qcow2', '-F', 'qcow2', '%o'], 1],
    ['a missing backing file with -u and a size is written', ['-f', 'qcow2', '-u', '-b', 'nope.qcow2', '-F', 'qcow2', '%o', '1M'], 0],
    ['an unknown backing format', ['-f', 'qcow2', '-b', 'b.qcow2', '-F', 'bogus', '%o', '1M'], 1],
    ['-F without -b', ['-f', 'qcow2', '-F', 'qcow2', '%o', '1M'], 1],
    ['-b with -F takes the size of the backing file', ['-f', 'qcow2', '-b', 'b.raw', '-F', 'raw', '%o'], 0],
    ['raw refuses a backing file', ['-f', 'raw', '-b', 'b.qcow2', '-F', 'qcow2', '%o', '1M'], 1],
  ];
  for (const [name, args, status] of cases) {
    it(`${name} (exit ${status})`, () => {
      expect(sameAsQemuImg(args).status).toBe(status);
      if (status === 0) {
        // Opened without its backing file, which may be missing on purpose (-u).
        const alone = (file: string): string => `json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"${s.path(file)}"}}`;
        expect(run('qemu-img', ['check', '-q', alone('r.qcow2')]).status).toBe(0);
        const info = (file: string): Record<string, unknown> => JSON.parse(run('qemu-img', ['info', '--output=json', alone(file)]).stdout);
        const [q, r] = [info('q.qcow2'), info('r.qcow2')];
        for (const key of ['virtual-size', 'backing-filename', 'backing-filename-format']) expect(r[key], key).toEqual(q[key]);
      }
      run('rm', ['-f', s.path('q.qcow2'), s.path('r.qcow2')]);
    });
  }
});

/** Lines qemu-img lists that qcow leaves out on purpose: encryption (refused) and host-file tuning (ignored). */
const NOT_OFFERED = /^ {2}(encrypt\.|encryption=|extent_size_hint=|nocow=)/;

describe('-o help lists the creation options as qemu-img does', () => {
  const cases: Array<[string, string[]]> = [
    ['create qcow2', ['create', '-f', 'qcow2', '-o', 'help']],
    ['create raw', ['create', '-f', 'raw', '-o', 'help']],
    ['create without -f (raw)', ['create', '-o', 'help']],
    ['create qcow2 with -o ?', ['create', '-f', 'qcow2', '-o', '?']],
    ['create qcow2 with help among other options', ['create', '-f', 'qcow2', '-o', 'cluster_size=4k,help']],
    ['create qcow2 naming the target (file options merged)', ['create', '-f', 'qcow2', '-o', 'help', 'x.qcow2', '1M']],
    ['create raw naming the target', ['create', '-f', 'raw', '-o', 'help', 'x.raw']],
    ['convert -O qcow2', ['convert', '-O', 'qcow2', '-o', 'help']],
    ['convert without -O (raw)', ['convert', '-f', 'raw', '-o', 'help']],
    ['convert -O qcow2 with a source and a target', ['convert', '-O', 'qcow2', '-o', 'help', 'a', 'b']],
    ['convert -O qcow2 with only a source', ['convert', '-O', 'qcow2', '-o', 'help,?', 'a']],
    ['unknown format', ['create', '-f', 'bogus', '-o', 'help']],
  ];
  for (const [name, args] of cases) {
    it(name, () => {
      const q = run('qemu-img', args, { cwd: s.dir });
      const r = qcow(args, { cwd: s.dir });
      expect(r.status).toBe(q.status);
      const offered = q.stdout.split('\n').filter((line) => !NOT_OFFERED.test(line));
      expect(r.stdout.split('\n')).toEqual(offered);
      expect(normalise(r.stderr).split('\n')[0]).toBe(normalise(q.stderr).split('\n')[0]);
      expect(existsSync(s.path('x.qcow2')) || existsSync(s.path('x.raw'))).toBe(false);
    });
  }
});

const COMMANDS = ['info', 'convert', 'create', 'map', 'compare', 'io', 'check', 'bench', 'snapshot', 'bitmap', 'serve', 'dd'];

describe('every command answers --help, -h and help COMMAND', () => {
  for (const name of COMMANDS) {
    it(name, () => {
      const help = qcow([name, '--help']);
      expect(help.status).toBe(0);
      expect(help.stderr).toBe('');
      const [usage, blank, ...lines] = help.stdout.trimEnd().split('\n');
      expect(usage).toMatch(new RegExp(`^usage: qcow ${name} `));
      expect(blank).toBe('');
      // Every option of the usage line has a line of its own that starts with it.
      const flags = new Set(usage!.match(/(?<=[[|(\s])--?[A-Za-z][\w-]*/g) ?? []);
      for (const flag of flags) {
        const named = new RegExp(`(^|[\\s,])${flag}(?=$|[\\s=,[])`);
        expect(lines.some((line) => /^\s+-/.test(line) && named.test(line)), `${name}: ${flag}`).toBe(true);
      }
      expect(qcow([name, '-h']).stdout).toBe(help.stdout);
      expect(qcow(['help', name]).stdout).toBe(help.stdout);
      // Help wins over everything else on the line, before anything is opened.
      const late = qcow([name, 'no-such-file', '--help']);
      expect(late.status).toBe(0);
      expect(late.stdout).toBe(help.stdout);
    });
  }

  it('qcow help and qcow --help list every command; help for an unknown command is refused', () => {
    for (const args of [['help'], ['--help'], ['-h']]) {
      const r = qcow(args);
      expect(r.status).toBe(0);
      for (const name of COMMANDS) expect(r.stdout).toContain(`  qcow ${name} `);
    }
    const r = qcow(['help', 'nope']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("qcow: Command not found: nope\nTry 'qcow --help' for more information.\n");
  });

  it('a value that reads -h is a value, not a request for help', () => {
    const r = qcow(['io', '-f', 'raw', '-c', 'help', s.path('b.raw')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('help [command] -- help for one or all commands');
  });
});
