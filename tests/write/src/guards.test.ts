import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';

/**
 * The writer's guards, judged by QEMU: a write that would land on metadata fails and marks the image corrupt; a
 * corrupt image opens read-only until `check -r all`; autoclear features the writer does not maintain (bitmaps)
 * are cleared before the first write, so QEMU knows the bitmaps are stale.
 */
describe('write guards', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-guards-');
  });
  afterAll(() => s.cleanup());

  function info(image: string): { corrupt?: boolean; bitmaps?: unknown[] } {
    const parsed = JSON.parse(qemuImg(['info', '--output=json', '-U', image])) as { 'format-specific': { data: Record<string, unknown> } };
    return parsed['format-specific'].data as { corrupt?: boolean; bitmaps?: unknown[] };
  }

  /** An image whose guest cluster 0 (COPIED) points at its own L1 table. */
  function imageWithDataOnL1(name: string): string {
    const image = s.path(name);
    qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
    qemuIo(image, ['write -P 0x11 0 64k', 'write -P 0x22 1M 64k']);
    const bytes = readFileSync(image);
    const l1 = Number(bytes.readBigUInt64BE(40));
    const l2 = Number(bytes.readBigUInt64BE(l1) & 0x00ff_ffff_ffff_fe00n);
    bytes.writeBigUInt64BE((1n << 63n) | BigInt(l1), l2);
    writeFileSync(image, bytes);
    return image;
  }

  it('a write onto metadata fails, marks the image corrupt and leaves the metadata alone', () => {
    const image = imageWithDataOnL1('overlap.qcow2');
    const before = readFileSync(image);
    const r = qcow(['io', '-c', 'write -P 0x33 0 4k', image]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/overlaps the active L1 table; the image is now marked corrupt/);
    expect(info(image).corrupt).toBe(true);
    // Only the header's incompatible-features field changed.
    const after = readFileSync(image);
    after.writeBigUInt64BE(before.readBigUInt64BE(72), 72);
    expect(after.equals(before)).toBe(true);
  });

  it('a corrupt image opens read-only until check -r all repairs it', () => {
    const image = imageWithDataOnL1('corrupt.qcow2');
    qcow(['io', '-c', 'write -P 0x33 0 4k', image]);
    expect(info(image).corrupt).toBe(true);
    const write = qcow(['io', '-c', 'write -P 0x44 1M 4k', image]);
    expect(write.status).toBe(1);
    expect(write.stderr).toMatch(/marked corrupt: it can only be opened read-only/);
    const read = qcow(['io', '-r', '-c', 'read -P 0x22 1M 64k', image]);
    expect(read.status, read.stdout + read.stderr).toBe(0);
    const repair = qcow(['check', '-r', 'all', image]);
    expect(repair.status, repair.stdout + repair.stderr).toBe(0);
    expect(info(image).corrupt).toBe(false);
    expect(run('qemu-img', ['check', image]).status).toBe(0);
    expect(qcow(['io', '-c', 'write -P 0x44 1M 4k', image]).status).toBe(0);
    expect(run('qemu-img', ['check', image]).status).toBe(0);
  });

  it('keeps the bitmaps autoclear bit: the bitmaps are maintained (issue 14; bitmaps.test.ts checks their bits)', () => {
    const image = s.path('bitmaps.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
    qemuIo(image, ['write -P 0x11 0 64k']);
    qemuImg(['bitmap', '--add', image, 'b1']);
    expect(info(image).bitmaps).toHaveLength(1);
    // A read-only session changes nothing.
    const before = readFileSync(image);
    expect(qcow(['io', '-r', '-c', 'read 0 64k', image]).status).toBe(0);
    expect(readFileSync(image).equals(before)).toBe(true);

    expect(qcow(['io', '-c', 'write -P 0x22 1M 4k', image]).status).toBe(0);
    expect(readFileSync(image).readBigUInt64BE(88) & 1n).toBe(1n);
    const check = run('qemu-img', ['check', image]);
    expect(check.stderr).not.toMatch(/lacking bitmap support/);
    expect(check.status, check.stdout).toBe(0);
    expect(info(image).bitmaps).toEqual([{ name: 'b1', granularity: 65536, flags: ['auto'] }]);
    expect(qemuIo(image, ['read -P 0x22 1M 4k', 'read -P 0x11 0 64k'])).not.toMatch(/verification failed/);
  });
});
