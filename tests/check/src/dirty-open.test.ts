import { cpSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { baseImages } from './base-images.js';

/**
 * A dirty image (lazy refcounts, left by a crash) opened read-write: QEMU rebuilds the refcounts before the first
 * write, and so must we. qemu-io does the same writes on a copy; both must read the same and check clean.
 */
describe('read-write open of a dirty image', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('check-dirty-');
  });
  afterAll(() => s.cleanup());

  it('repairs the refcounts first, then writes', () => {
    const base = baseImages.find((b) => b.name.startsWith('lazy refcounts'))!;
    const dir = s.path('dirty');
    mkdirSync(dir);
    base.build(dir);
    const info = JSON.parse(qemuImg(['info', '--output=json', 'img.qcow2'], { cwd: dir })) as { 'dirty-flag': boolean };
    expect(info['dirty-flag']).toBe(true);
    cpSync(`${dir}/img.qcow2`, `${dir}/qemu.qcow2`);

    const writes = ['write -P 0xc1 64k 192k', 'write -P 0xc2 3M 64k', 'write -z 1M 64k'];
    const mine = qcow(['io', ...writes.flatMap((c) => ['-c', c]), 'img.qcow2'], { cwd: dir });
    expect(mine.status, mine.stderr).toBe(0);
    run('qemu-io', ['-f', 'qcow2', ...writes.flatMap((c) => ['-c', c]), 'qemu.qcow2'], { cwd: dir });

    const check = run('qemu-img', ['check', 'img.qcow2'], { cwd: dir });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const after = JSON.parse(qemuImg(['info', '--output=json', 'img.qcow2'], { cwd: dir })) as { 'dirty-flag': boolean };
    expect(after['dirty-flag']).toBe(false);
    const cmp = run('qemu-img', ['compare', 'qemu.qcow2', 'img.qcow2'], { cwd: dir });
    expect(cmp.status, cmp.stdout).toBe(0);
  });

  it('opens read-only without touching the image', () => {
    const base = baseImages.find((b) => b.name.startsWith('lazy refcounts'))!;
    const dir = s.path('dirty-ro');
    mkdirSync(dir);
    base.build(dir);
    const before = run('sha256sum', ['img.qcow2'], { cwd: dir }).stdout;
    const read = qcow(['io', '-r', '-c', 'read -P 0xb1 0 128k', 'img.qcow2'], { cwd: dir });
    expect(read.status, read.stderr).toBe(0);
    expect(run('sha256sum', ['img.qcow2'], { cwd: dir }).stdout).toBe(before);
  });
});
