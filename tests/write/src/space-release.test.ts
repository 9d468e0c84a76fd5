import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, qcow, qemuImg, qemuIo, run, scratch } from '@q/test-support';
import { qcowIo } from './harness.js';

/**
 * Space given back, judged against QEMU: after a guest-style trim the image occupies less (`du`, stat blocks) by
 * about what was trimmed, as after the same trim by qemu-io; qemu-img check stays clean and the guest bytes are
 * what QEMU's own tools read. On a disk file system (os.tmpdir(), ext4 here) and on tmpfs (/dev/shm), whose hole
 * punching differ in cost and granularity.
 */
const places: Array<{ label: string; make(): { dir: string; cleanup(): void } }> = [
  {
    label: 'a disk file system (os.tmpdir())',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'qcow-space-'));
      return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  { label: 'tmpfs (/dev/shm)', make: () => scratch('qcow-space-') },
];

/** Bytes the file occupies (stat blocks, what du counts). */
const used = (path: string): number => statSync(path).blocks * 512;
const size = (path: string): number => statSync(path).size;

function checkClean(image: string, format = 'qcow2'): void {
  const check = run('qemu-img', ['check', '-f', format, image]);
  expect(check.status, `qemu-img check ${image}:\n${check.stdout}${check.stderr}`).toBe(0);
  expect(check.stdout).toMatch(/No errors were found/);
}

function compare(a: string, b: string, formats: [string, string] = ['qcow2', 'qcow2']): void {
  const result = run('qemu-img', ['compare', '-f', formats[0], '-F', formats[1], a, b]);
  expect(result.status, `qemu-img compare ${a} ${b}: ${result.stdout}${result.stderr}`).toBe(0);
}

/** A 64 MiB qcow2 image (made by qemu-img) with 32 MiB of data from qemu-io, and its twin for qemu-io to trim. */
function filledPair(dir: string, name: string, create: string[] = []): { mine: string; theirs: string } {
  const mine = join(dir, `${name}.qcow2`);
  const theirs = join(dir, `${name}-qemu.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', ...create, mine, '64M']);
  qemuIo(mine, ['write -P 0x11 0 16M', 'write -P 0x22 16M 16M']);
  qemuImg(['convert', '-f', 'qcow2', '-O', 'qcow2', ...create, mine, theirs]);
  return { mine, theirs };
}

describe.each(places)('space given back on $label', (place) => {
  let where: { dir: string; cleanup(): void };
  beforeAll(() => {
    where = place.make();
  });
  afterAll(() => where.cleanup());

  it('qcow io discard of half the data: du drops by what was trimmed, the size stays, as with qemu-io', () => {
    const { mine, theirs } = filledPair(where.dir, 'discard');
    const before = used(mine);
    const length = size(mine);
    const out = qcowIo(mine, ['discard 0 16M']);
    expect(out).toMatch(/^discard 16777216\/16777216 bytes at offset 0$/m);
    qemuIo(theirs, ['discard 0 16M']);
    const dropped = before - used(mine);
    expect(dropped, `du dropped by ${dropped} bytes`).toBeGreaterThanOrEqual(0.9 * 16 * MiB);
    // QEMU gives back the same (give or take a block of metadata), and neither changes the file's size.
    expect(Math.abs(used(mine) - used(theirs))).toBeLessThanOrEqual(64 * 1024);
    expect(size(mine)).toBe(length);
    expect(size(theirs)).toBe(length);
    checkClean(mine);
    compare(theirs, mine);
    // The trimmed half reads as zeros, the rest as written (a reference built by QEMU alone).
    const reference = join(where.dir, 'discard-ref.raw');
    qemuImg(['create', '-q', '-f', 'raw', reference, '64M']);
    qemuIo(reference, ['write -P 0x22 16M 16M'], { format: 'raw' });
    compare(reference, mine, ['raw', 'qcow2']);
    const map = JSON.parse(qcow(['map', '--output=json', mine]).stdout) as unknown;
    expect(map).toEqual(JSON.parse(qemuImg(['map', '--output=json', mine])));
  });

  it('write -z -u gives space back; write -z without -u keeps the clusters (as QEMU)', () => {
    const { mine, theirs } = filledPair(where.dir, 'zero');
    const before = used(mine);
    qcowIo(mine, ['write -z 0 8M']);
    qemuIo(theirs, ['write -z 0 8M']);
    expect(Math.abs(before - used(mine))).toBeLessThanOrEqual(64 * 1024);
    qcowIo(mine, ['write -z -u 8M 16M']);
    qemuIo(theirs, ['write -z -u 8M 16M']);
    expect(before - used(mine)).toBeGreaterThanOrEqual(0.9 * 16 * MiB);
    expect(Math.abs(used(mine) - used(theirs))).toBeLessThanOrEqual(64 * 1024);
    checkClean(mine);
    compare(theirs, mine);
    expect(JSON.parse(qcow(['map', '--output=json', mine]).stdout)).toEqual(JSON.parse(qemuImg(['map', '--output=json', theirs])));
  });

  it('snapshot delete gives the snapshot-only clusters back; what remains reads the same', () => {
    const image = join(where.dir, 'snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
    qemuIo(image, ['write -P 0x31 0 16M']);
    qemuImg(['snapshot', '-c', 'old', image]);
    qemuIo(image, ['write -P 0x32 0 16M', 'write -P 0x33 32M 4M']);
    qemuImg(['snapshot', '-c', 'new', image]);
    qemuIo(image, ['write -P 0x34 32M 1M']);
    const content = (snapshot?: string): string => {
      const out = join(where.dir, `snap-${snapshot ?? 'active'}.raw`);
      qemuImg(['convert', ...(snapshot === undefined ? [] : ['-l', `snapshot.name=${snapshot}`]), '-O', 'raw', image, out]);
      return out;
    };
    const newBefore = content('new');
    const activeBefore = content();
    const theirs = join(where.dir, 'snap-qemu.qcow2');
    run('cp', ['--sparse=always', image, theirs]);
    const before = used(image);
    const r = qcow(['snapshot', '-d', 'old', image]);
    expect(r.status, r.stderr).toBe(0);
    qemuImg(['snapshot', '-d', 'old', theirs]);
    // 'old' alone held 16 MiB of data (and its L2 table, L1 table and the snapshot table entry); QEMU gives back
    // the same (the copy made for it may hold a few more holes).
    expect(before - used(image)).toBeGreaterThanOrEqual(0.9 * 16 * MiB);
    expect(Math.abs(used(image) - used(theirs))).toBeLessThanOrEqual(256 * 1024);
    expect(size(image)).toBe(size(theirs));
    checkClean(image);
    expect(qemuImg(['snapshot', '-l', image])).not.toMatch(/\bold\b/);
    compare(newBefore, content('new'), ['raw', 'raw']);
    compare(activeBefore, content(), ['raw', 'raw']);
  });

  it('cuts free clusters off the end of the file at close (QEMU keeps them)', () => {
    const { mine, theirs } = filledPair(where.dir, 'tail');
    qcowIo(mine, ['discard 16M 16M']);
    qemuIo(theirs, ['discard 16M 16M']);
    expect(size(mine)).toBeLessThanOrEqual(size(theirs) - 16 * MiB);
    const check = JSON.parse(run('qemu-img', ['check', '--output=json', mine]).stdout) as { 'image-end-offset': number };
    expect(size(mine)).toBe(check['image-end-offset']);
    checkClean(mine);
    compare(theirs, mine);
    // Writing again past the new end grows it as usual.
    qcowIo(mine, ['write -P 0x44 40M 1M']);
    qemuIo(theirs, ['write -P 0x44 40M 1M']);
    checkClean(mine);
    compare(theirs, mine);
  });

  it('raw images: discard and write -z -u punch holes, write -z writes zeros, as QEMU does', () => {
    const mine = join(where.dir, 'disk.raw');
    const theirs = join(where.dir, 'disk-qemu.raw');
    for (const path of [mine, theirs]) {
      qemuImg(['create', '-q', '-f', 'raw', path, '32M']);
      qemuIo(path, ['write -P 0x51 0 32M'], { format: 'raw' });
    }
    const before = used(mine);
    const commands = ['discard 0 8M', 'write -z 8M 4M', 'write -z -u 12M 4M', 'discard 20M 5000'];
    const io = qcow(['io', '-f', 'raw', ...commands.flatMap((c) => ['-c', c]), mine]);
    expect(io.status, io.stderr).toBe(0);
    qemuIo(theirs, commands, { format: 'raw' });
    expect(before - used(mine)).toBeGreaterThanOrEqual(0.9 * 12 * MiB);
    // QEMU zeroes 8M..12M with ZERO_RANGE, which keeps the blocks, as written zeros do.
    expect(Math.abs(used(mine) - used(theirs))).toBeLessThanOrEqual(64 * 1024);
    expect(size(mine)).toBe(32 * MiB);
    compare(theirs, mine, ['raw', 'raw']);
    qemuIo(mine, ['read -P 0 0 16M', 'read -P 0x51 16M 4M', 'read -P 0 20M 4096', 'read -P 0x51 24M 8M'], { format: 'raw' });
  });
});
