import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qemuImg, qemuIo, runBytes, scratch, type Scratch } from '@q/test-support';
import { buildChain } from './chain-builder.js';
import { expectSameRaw, MiB, qcowRawHash, qemuRawHash, writeMixedRaw } from './oracle.js';

// Where `qcow convert -O raw` writes and how: to stdout (`-`), with progress (-p), with -m N, sparse by
// default and fully allocated with -S 0, like qemu-img's output file.

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function qcowStdout(args: string[]): { status: number; stdout: Buffer; stderr: string } {
  return runBytes(process.execPath, [QCOW_CLI, 'convert', ...args]);
}

describe('qcow convert output', () => {
  let s: Scratch;
  const images: Array<{ name: string; path: string; args?: string[] }> = [];
  beforeAll(() => {
    s = scratch('interop-convout-');
    const plain = s.path('plain.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', plain, '4M']);
    qemuIo(plain, ['write -P 0x11 0 64k', 'write -P 0x12 1M 100k', 'write -z 2M 64k', 'write -P 0x13 4190000 4304']);
    images.push({ name: 'plain v3', path: plain });

    writeMixedRaw(s.path('mixed.raw'), 3 * MiB + 512, 9);
    qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd,cluster_size=4k', s.path('mixed.raw'), s.path('comp.qcow2')]);
    images.push({ name: 'zstd compressed, size not a multiple of the cluster size', path: s.path('comp.qcow2') });

    const chain = buildChain(s, 'ch', [
      { format: 'raw', size: 2 * MiB },
      { format: 'qcow2', size: 3 * MiB, opts: 'cluster_size=4k' },
      { format: 'qcow2', size: 4 * MiB, opts: 'cluster_size=64k,extended_l2=on' },
    ]);
    images.push({ name: 'chain raw <- 4k <- 64k extended L2', path: chain[2]! });

    const snap = s.path('snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', snap, '2M']);
    qemuIo(snap, ['write -P 0x21 0 1M']);
    qemuImg(['snapshot', '-c', 'keep', snap]);
    qemuIo(snap, ['write -P 0x22 512k 1M']);
    images.push({ name: 'snapshot via -l snapshot.name', path: snap, args: ['-l', 'snapshot.name=keep'] });
  });
  afterAll(() => s.cleanup());

  const cases = ['plain v3', 'zstd compressed, size not a multiple of the cluster size', 'chain raw <- 4k <- 64k extended L2', 'snapshot via -l snapshot.name'];

  for (const name of cases) {
    it(`${name}: stdout (-) equals the file output and qemu-img's`, async () => {
      const im = images.find((x) => x.name === name)!;
      const file = await qcowRawHash(s, im.path, im.args ?? []);
      const q = await qemuRawHash(s, im.path, im.args ?? []);
      expect(file.sha).toBe(q.sha);
      const out = qcowStdout([...(im.args ?? []), '-O', 'raw', im.path, '-']);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout.length).toBe(file.size);
      expect(sha(out.stdout)).toBe(file.sha);
    });

    it(`${name}: -p to stdout keeps the progress out of the data`, () => {
      const im = images.find((x) => x.name === name)!;
      const plain = qcowStdout([...(im.args ?? []), '-O', 'raw', im.path, '-']);
      const progress = qcowStdout(['-p', ...(im.args ?? []), '-O', 'raw', im.path, '-']);
      expect(progress.status, progress.stderr).toBe(0);
      expect(sha(progress.stdout)).toBe(sha(plain.stdout));
    });
  }

  for (const m of ['1', '2', '8', '16']) {
    it(`-m ${m} gives the same bytes`, async () => {
      for (const im of images) await expectSameRaw(s, im.path, { qcowArgs: ['-m', m, ...(im.args ?? [])], qemuArgs: im.args ?? [] });
    });
  }

  it('a reader that closes the pipe early (`| head -c`) ends the copy quietly with exit 0', () => {
    const big = s.path('big.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', big, '64M']);
    qemuIo(big, ['write -P 0x31 0 64M']);
    // bash's PIPESTATUS gives qcow's exit code, not head's.
    const script = `"$0" "$1" convert -O raw "$2" - | head -c 10 >/dev/null; exit \${PIPESTATUS[0]}`;
    const piped = spawnSync('bash', ['-c', script, process.execPath, QCOW_CLI, big], { encoding: 'utf8' });
    expect(piped.status).toBe(0);
    expect(piped.stderr).toBe('');
  });

  it('-f raw reads a qcow2 file as its raw bytes, like qemu-img -f raw', async () => {
    for (const im of images) await expectSameRaw(s, im.path, { qcowArgs: ['-f', 'raw'], qemuArgs: ['-f', 'raw'] });
  });

  it('-f qcow2 on a raw file is an error in both', () => {
    const q = runBytes('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', s.path('mixed.raw'), s.path('never-q.raw')]);
    const c = qcowStdout(['-f', 'qcow2', '-O', 'raw', s.path('mixed.raw'), s.path('never-c.raw')]);
    expect(q.status).not.toBe(0);
    expect(c.status).not.toBe(0);
    expect(c.stderr).not.toBe('');
  });

  it('the raw output file is sparse by default, like qemu-img\'s', async () => {
    const im = images[0]!;
    const c = await qcowRawHash(s, im.path);
    const q = await qemuRawHash(s, im.path);
    const [cb, qb] = [statSync(c.path).blocks * 512, statSync(q.path).blocks * 512];
    expect(cb, `qcow allocated ${cb} bytes, qemu-img ${qb}`).toBeLessThanOrEqual(qb + 64 * 1024);
    expect(cb).toBeLessThan(c.size / 2);
  });

  it('-S 0 writes a fully allocated raw file, like qemu-img -S 0', async () => {
    const im = images[0]!;
    const q = await qemuRawHash(s, im.path, ['-S', '0']);
    const c = await qcowRawHash(s, im.path, ['-S', '0']);
    expect(c.sha).toBe(q.sha);
    expect(statSync(q.path).blocks * 512).toBeGreaterThanOrEqual(q.size);
    expect(statSync(c.path).blocks * 512, 'allocated bytes of qcow\'s -S 0 output').toBeGreaterThanOrEqual(c.size);
  });
});
