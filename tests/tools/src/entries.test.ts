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
  it('the build made a code cache for the bin', () => {
    expect(existsSync(repoPath('packages', 'cli', 'dist', 'qcow.cjs.cache'))).toBe(true);
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
