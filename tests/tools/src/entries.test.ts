import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qemuImg, qemuIo, repoPath, run, scratch, type Scratch } from '@q/test-support';

// The ways to start the CLI run one program: the `qcow` bin (bin/qcow.cjs, what the tests use) and DESIGN.md's
// built entry dist/cli.js; with the build's V8 code cache and without it (QCOW_CODE_CACHE=0).

let s: Scratch;
beforeAll(() => {
  s = scratch('tools-entries-');
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('a.qcow2'), '4M']);
  qemuIo(s.path('a.qcow2'), ['write -P 0x5a 0 64k']);
  qemuImg(['create', '-q', '-f', 'qcow2', s.path('b.qcow2'), '4M']);
});
afterAll(() => s.cleanup());

const DIST_CLI = repoPath('packages', 'cli', 'dist', 'cli.js');

function viaNode(entry: string, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  return run('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, entry, ...args]);
}

describe('qcow entry points', () => {
  it('the build made a code cache for the bin, and one per start-up-bound command that this Node accepts', () => {
    expect(existsSync(repoPath('packages', 'cli', 'dist', 'qcow.cjs.cache'))).toBe(true);
    const program = repoPath('packages', 'cli', 'bin', 'program.cjs');
    for (const command of ['info', 'map', 'check', 'convert', 'create', 'io', 'snapshot', 'measure', 'resize', 'compare', 'rebase', 'commit']) {
      expect(existsSync(repoPath('packages', 'cli', 'dist', 'cache', `${command}.cache`)), command).toBe(true);
      // V8 refuses a cache quietly (the program then compiles as it goes): ask the script whether it took this one.
      const probe = `const { script } = require(${JSON.stringify(program)}).loadProgram(${JSON.stringify(command)}); process.stdout.write(String(script.cachedDataRejected))`;
      expect(run(process.execPath, ['-e', probe]).stdout, command).toBe('false');
    }
  });

  it('text written into a full non-blocking pipe arrives whole, in order (the descriptor writes give way to the stream)', () => {
    // perl (in every Debian) makes a pipe whose write end has O_NONBLOCK, as a parent that set it would hand over,
    // and reads it only after 0.5 s: the ~1.2 MB hex dump fills it and write(2) answers EAGAIN.
    const nonBlocking = [
      'use Fcntl; pipe(my $r, my $w) or die; fcntl($w, F_SETFL, fcntl($w, F_GETFL, 0) | O_NONBLOCK) or die;',
      "my $pid = fork(); if ($pid == 0) { close $r; open(STDOUT, '>&', $w) or die; exec @ARGV; die; }",
      'close $w; select(undef, undef, undef, 0.5); binmode STDOUT; my $b; print $b while sysread($r, $b, 65536) > 0;',
      'waitpid($pid, 0); exit($? >> 8);',
    ].join(' ');
    const args = ['io', '-c', 'read -v 0 256k', s.path('a.qcow2')];
    const slow = run('perl', ['-e', nonBlocking, process.execPath, QCOW_CLI, ...args], { timeoutMs: 60_000 });
    const plain = viaNode(QCOW_CLI, args);
    expect(slow.status).toBe(0);
    expect(slow.stderr).toBe('');
    // The last line is the timing ("... ops; 0.0001 sec ..."), which differs between runs.
    const withoutTiming = (text: string): string => text.split('\n').filter((line) => !line.includes(' ops; ')).join('\n');
    expect(plain.stdout.length).toBeGreaterThan(1_000_000);
    expect(withoutTiming(slow.stdout)).toBe(withoutTiming(plain.stdout));
  });

  it('a reader that closes the pipe early (`qcow io -c "read -v ..." | head -1`) ends the command quietly with exit 0', () => {
    const script = `"$0" "$1" io -c 'read -v 0 256k' "$2" | head -1 >/dev/null; exit \${PIPESTATUS[0]}`;
    const result = run('bash', ['-c', script, process.execPath, QCOW_CLI, s.path('a.qcow2')]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('dist/cli.js, the bin and the bin without its code cache answer alike, exit codes included', () => {
    const cases = [
      ['info', '--output=json', s.path('a.qcow2')],
      ['map', '--output=json', s.path('a.qcow2')],
      ['compare', s.path('a.qcow2'), s.path('b.qcow2')],
      ['info', s.path('missing.qcow2')],
      ['no-such-command'],
    ];
    for (const args of cases) {
      const bin = viaNode(QCOW_CLI, args);
      expect(viaNode(DIST_CLI, args), args.join(' ')).toEqual(bin);
      expect(viaNode(QCOW_CLI, args, { QCOW_CODE_CACHE: '0' }), args.join(' ')).toEqual(bin);
    }
    expect(viaNode(QCOW_CLI, ['compare', s.path('a.qcow2'), s.path('b.qcow2')]).status).toBe(1);
    expect(viaNode(QCOW_CLI, ['info', s.path('missing.qcow2')]).status).toBe(1);
  });
});
