import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qcow, qemuImg, qemuIo, requireTool, run, scratch, type Scratch } from '@q/test-support';

const KiB = 1024;
const MiB = 1024 * KiB;
const OLD = 0xee;

/** Offset of the first byte where `a` and `b` differ, or -1 (fast, unlike toEqual on megabytes). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * `qcow convert -O raw -n` into an existing file that holds old bytes (0xee everywhere): which ranges get written is
 * visible in the result, so it is compared byte for byte with what qemu-img convert leaves in a copy of the same
 * file. `--target-is-zero` vouches that the file reads zeros: zero ranges and all-zero blocks are then skipped (the
 * old bytes stay), as qemu-img skips them; `-S 0` writes everything. `-W` is accepted and changes nothing.
 */
describe('qcow convert -O raw -n [--target-is-zero], -W', () => {
  let s: Scratch;
  let source: string;
  let expected: Uint8Array;
  beforeAll(() => {
    s = scratch('interop-convraw-');
    source = s.path('src.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=64k', source, '8M']);
    qemuIo(source, [
      'write -P 0x11 0 1M',
      'write -z 2M 1M', // zero flag
      'write -P 0 4M 512k', // allocated, all zeros
      'write -P 0x22 6M 64k',
      'write -P 0x33 7M 16k',
      'write -P 0 7172k 4k', // an all-zero 4 KiB block inside allocated data
    ]);
    const raw = s.path('expected.raw');
    qemuImg(['convert', '-f', 'qcow2', '-O', 'raw', source, raw]);
    expected = new Uint8Array(readFileSync(raw));
  });
  afterAll(() => s.cleanup());

  /** Converts into a file of old bytes with qemu-img and with qcow (same flags); returns both results. */
  function both(flags: string[]): { ours: Uint8Array; theirs: Uint8Array } {
    const old = new Uint8Array(8 * MiB).fill(OLD);
    const ours = s.path('ours.raw');
    const theirs = s.path('theirs.raw');
    writeFileSync(ours, old);
    writeFileSync(theirs, old);
    const q = run('qemu-img', ['convert', '-n', ...flags, '-f', 'qcow2', '-O', 'raw', source, theirs]);
    expect(q.status, q.stderr).toBe(0);
    const r = qcow(['convert', '-n', ...flags, '-f', 'qcow2', '-O', 'raw', source, ours]);
    expect(r.status, r.stderr).toBe(0);
    return { ours: new Uint8Array(readFileSync(ours)), theirs: new Uint8Array(readFileSync(theirs)) };
  }

  it('--target-is-zero: zero ranges and all-zero blocks are not written, as qemu-img leaves them', () => {
    const { ours, theirs } = both(['--target-is-zero']);
    expect(firstDifference(ours, theirs)).toBe(-1);
    // The old bytes show where nothing was written: the zero-flag range, the hole, the all-zero data.
    for (const offset of [2 * MiB, 3 * MiB + 5, 4 * MiB, 7172 * KiB, 8 * MiB - 1]) expect(ours[offset], `offset ${offset}`).toBe(OLD);
    // And the data is there.
    for (const offset of [0, 6 * MiB, 7 * MiB]) expect(ours[offset], `offset ${offset}`).toBe(expected[offset]);
  });

  it('--target-is-zero with -S 0: everything is written, zeros too (as qemu-img)', () => {
    const { ours, theirs } = both(['--target-is-zero', '-S', '0']);
    expect(firstDifference(theirs, expected)).toBe(-1);
    expect(firstDifference(ours, expected)).toBe(-1);
  });

  it('without --target-is-zero: the old bytes are overwritten everywhere', () => {
    const { ours, theirs } = both([]);
    expect(firstDifference(theirs, expected)).toBe(-1);
    expect(firstDifference(ours, expected)).toBe(-1);
  });

  it('-W is accepted and changes nothing: raw and compressed qcow2 outputs are byte-identical without it', () => {
    for (const [format, extra] of [['raw', []], ['qcow2', ['-c']]] as const) {
      const plain = s.path(`plain.${format}`);
      const unordered = s.path(`w.${format}`);
      for (const [target, flags] of [[plain, []], [unordered, ['-W']]] as const) {
        const r = qcow(['convert', ...flags, ...extra, '-O', format, source, target]);
        expect(r.status, r.stderr).toBe(0);
      }
      expect(firstDifference(new Uint8Array(readFileSync(plain)), new Uint8Array(readFileSync(unordered)))).toBe(-1);
    }
    const help = qcow(['convert', '--help']);
    expect(help.stdout).toMatch(/^\s+-W\s+accepted; writes stay in order \(deterministic output\)$/m);
    expect(help.stdout).toMatch(/^\s+--target-is-zero\s/m);
  });
});

/**
 * `-t`, the target's cache mode: qemu-img convert's default is unsafe, which never syncs a raw target; any other
 * mode syncs it once. Both tools run under strace, counting fsync and fdatasync calls.
 */
describe('qcow convert -O raw -t CACHE', () => {
  let s: Scratch;
  beforeAll(() => {
    requireTool('strace');
    s = scratch('interop-convsync-');
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('src.qcow2'), '4M']);
    qemuIo(s.path('src.qcow2'), ['write -P 0x5a 0 1M']);
  });
  afterAll(() => s.cleanup());

  function syncs(command: string[], label: string): number {
    const log = s.path(`${label}.strace`);
    const r = run('strace', ['-f', '-e', 'trace=fsync,fdatasync', '-o', log, ...command]);
    expect(r.status, r.stderr).toBe(0);
    // Node fsyncs its stdout and stderr at exit (fd 1 and 2): only the other calls count.
    return (readFileSync(log, 'utf8').match(/\bf(?:data)?sync\((?![12]\))/g) ?? []).length;
  }

  it('syncs the target as qemu-img does: never by default or with unsafe, at the end otherwise', () => {
    for (const [flags, synced] of [[[], false], [['-t', 'unsafe'], false], [['-t', 'writeback'], true], [['-t', 'none'], true]] as const) {
      const label = flags.join('') || 'default';
      const theirs = syncs(['qemu-img', 'convert', ...flags, '-O', 'raw', s.path('src.qcow2'), s.path(`q-${label}.raw`)], `q-${label}`);
      const ours = syncs([process.execPath, QCOW_CLI, 'convert', ...flags, '-O', 'raw', s.path('src.qcow2'), s.path(`r-${label}.raw`)], `r-${label}`);
      expect(theirs > 0, `qemu-img ${label}`).toBe(synced);
      expect(ours > 0, `qcow ${label}`).toBe(synced);
    }
  });

  it('syncs a new qcow2 image only when the cache mode is not unsafe', () => {
    // qemu-img's four fdatasyncs come while it creates the empty image, before the first data write (strace -tt);
    // its data is never synced in unsafe mode. Ours: no sync at all in unsafe mode, the four steps' otherwise.
    for (const [flags, synced] of [[[], false], [['-t', 'unsafe'], false], [['-t', 'writeback'], true]] as const) {
      const label = `qcow2${flags.join('')}`;
      const target = s.path(`r-${label}.qcow2`);
      const ours = syncs([process.execPath, QCOW_CLI, 'convert', ...flags, '-O', 'qcow2', s.path('src.qcow2'), target], `r-${label}`);
      expect(ours > 0, `qcow ${label}`).toBe(synced);
      expect(run('qemu-img', ['check', target]).status).toBe(0);
      expect(run('qemu-img', ['compare', s.path('src.qcow2'), target]).status).toBe(0);
    }
  });

  it('refuses a cache mode qemu-img does not know, as qemu-img does', () => {
    const r = qcow(['convert', '-t', 'fast', '-O', 'raw', s.path('src.qcow2'), s.path('x.raw')]);
    const q = run('qemu-img', ['convert', '-t', 'fast', '-O', 'raw', s.path('src.qcow2'), s.path('y.raw')]);
    expect(r.status).toBe(q.status);
    expect(r.stderr).toBe(q.stderr.replace(/^qemu-img:/, 'qcow:'));
  });
});
