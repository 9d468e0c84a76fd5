import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { ioLines, writeMixedRaw } from './oracle.js';

// `qcow io -r -c 'read ...'` against `qemu-io -r -c 'read ...'`: the same output lines (timing lines aside) and
// exit status; a failed pattern check prints 'Pattern verification failed at offset X, N bytes' and exits 1.

interface IoCase {
  name: string;
  image: 'chain' | 'compressed' | 'zeroed' | 'raw' | 'bytes';
  commands: string[];
  status: 0 | 1;
}

const cases: IoCase[] = [
  { name: 'pattern matches, one command', image: 'chain', commands: ['read -P 0x22 64k 64k'], status: 0 },
  { name: 'patterns from three layers', image: 'chain', commands: ['read -P 0x11 0 64k', 'read -P 0x22 64k 64k', 'read -P 0x33 128k 4k', 'read -P 0 2M 1M'], status: 0 },
  { name: 'unaligned offset and length', image: 'chain', commands: ['read -P 0x22 65537 1000', 'read -P 0x11 100 3'], status: 0 },
  { name: 'mismatch inside the range', image: 'chain', commands: ['read -P 0x22 32k 64k'], status: 1 },
  { name: 'mismatch, then a good read (status stays 1)', image: 'chain', commands: ['read -P 0x33 0 4k', 'read -P 0x11 0 4k'], status: 1 },
  { name: 'good read, then a mismatch', image: 'chain', commands: ['read -P 0x11 0 4k', 'read -P 0x11 64k 4k'], status: 1 },
  { name: 'zeros past the end of a shorter backing file', image: 'chain', commands: ['read -P 0 2M 1M', 'read -P 0x44 3M+4k 4k'.replace('3M+4k', '3149824')], status: 0 },
  { name: 'quiet reads', image: 'chain', commands: ['read -q -P 0x11 0 4k', 'read -q 0 1M'], status: 0 },
  { name: 'quiet mismatch', image: 'chain', commands: ['read -q -P 0x12 0 4k'], status: 1 },
  { name: 'reads without a pattern', image: 'compressed', commands: ['read 0 64k', 'read 4k 1M', 'read 0 0'], status: 0 },
  { name: 'hex dump of 64 bytes', image: 'compressed', commands: ['read -v 0 64'], status: 0 },
  { name: 'hex dump with a partial last line', image: 'compressed', commands: ['read -v 8190 21'], status: 0 },
  { name: 'hex dump of 3 bytes', image: 'chain', commands: ['read -v 64k 3'], status: 0 },
  { name: 'hex dump with a pattern check', image: 'chain', commands: ['read -v -P 0x22 65528 16'], status: 1 },
  { name: 'hex dump of every byte value (which ones print as text)', image: 'bytes', commands: ['read -v 0 256'], status: 0 },
  { name: 'pattern over part of the buffer (-s, -l)', image: 'chain', commands: ['read -P 0x22 -s 65536 -l 100 0 128k', 'read -P 0x11 -s 0 -l 65536 0 128k'], status: 0 },
  { name: 'pattern range past the end of the read data', image: 'chain', commands: ['read -P 0x22 -s 200000 -l 100 0 128k'], status: 1 },
  { name: 'zero clusters and zero subclusters', image: 'zeroed', commands: ['read -P 0 0 64k', 'read -P 0x55 64k 64k', 'read -P 0 1M 4k', 'read -P 0x55 1M+4k 4k'.replace('1M+4k', '1052672')], status: 0 },
  { name: 'zero cluster read with the wrong pattern', image: 'zeroed', commands: ['read -P 0x55 0 512'], status: 1 },
  { name: 'raw image read as raw', image: 'raw', commands: ['read -P 0x66 0 1M', 'read -P 0 1M 1M', 'read -P 0x66 1M 4k'], status: 1 },
];

describe('qcow io -r vs qemu-io -r', () => {
  let s: Scratch;
  const images: Record<IoCase['image'], { path: string; format: string }> = {} as never;
  beforeAll(() => {
    s = scratch('interop-io-');
    qemuImg(['create', '-q', '-f', 'raw', s.path('base.raw'), '2M']);
    qemuIo(s.path('base.raw'), ['write -P 0x11 0 2M'], { format: 'raw' });
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', '-b', 'base.raw', '-F', 'raw', s.path('mid.qcow2'), '3M']);
    qemuIo(s.path('mid.qcow2'), ['write -P 0x22 64k 64k']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', s.path('top.qcow2'), '4M']);
    qemuIo(s.path('top.qcow2'), ['write -P 0x33 128k 64k', 'write -P 0x44 3M 64k']);
    images.chain = { path: s.path('top.qcow2'), format: 'qcow2' };

    writeMixedRaw(s.path('mixed.raw'), 2 * 1024 * 1024, 5);
    qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=4k', s.path('mixed.raw'), s.path('comp.qcow2')]);
    images.compressed = { path: s.path('comp.qcow2'), format: 'qcow2' };

    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', s.path('zero.qcow2'), '2M']);
    qemuIo(s.path('zero.qcow2'), ['write -P 0x55 0 2M', 'write -z 0 64k', 'write -z 1M 4k']);
    images.zeroed = { path: s.path('zero.qcow2'), format: 'qcow2' };

    qemuImg(['create', '-q', '-f', 'raw', s.path('plain.raw'), '2M']);
    qemuIo(s.path('plain.raw'), ['write -P 0x66 0 1M'], { format: 'raw' });
    images.raw = { path: s.path('plain.raw'), format: 'raw' };

    writeFileSync(s.path('bytes.bin'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('bytes.qcow2'), '64k']);
    qemuIo(s.path('bytes.qcow2'), [`write -s ${s.path('bytes.bin')} 0 256`]);
    images.bytes = { path: s.path('bytes.qcow2'), format: 'qcow2' };
  });
  afterAll(() => s.cleanup());

  for (const c of cases) {
    it(`${c.name} (exit ${c.status})`, () => {
      const img = images[c.image];
      const args = ['-r', '-f', img.format, ...c.commands.flatMap((x) => ['-c', x]), img.path];
      const q = run('qemu-io', args);
      const r = qcow(['io', ...args]);
      expect(q.status, 'oracle exit status').toBe(c.status);
      expect(ioLines(r.stdout)).toEqual(ioLines(q.stdout));
      expect(r.status).toBe(q.status);
    });
  }

  it('a mismatch is reported with the request offset and length', () => {
    const r = qcow(['io', '-r', '-c', 'read -P 0x33 100000 5000', images.chain.path]);
    expect(r.status).toBe(1);
    expect(ioLines(r.stdout)[0]).toBe('Pattern verification failed at offset 100000, 5000 bytes');
  });

  // qemu-io prints "read failed" on stdout; qcow keeps the project's rule that errors are one line on stderr.
  it('a read past the end fails with exit 1 in both', () => {
    for (const cmd of ['read 3M 2M', 'read -P 0 4M 512']) {
      const args = ['-r', '-f', 'qcow2', '-c', cmd, images.chain.path];
      const q = run('qemu-io', args);
      const r = qcow(['io', ...args]);
      expect(q.status).toBe(1);
      expect(r.status).toBe(1);
      expect(q.stdout.startsWith('read failed: ')).toBe(true);
      expect(r.stderr.startsWith('read failed: '), r.stdout + r.stderr).toBe(true);
    }
  });

  it('FILE@SNAP reads the snapshot', () => {
    const img = s.path('snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', img, '1M']);
    qemuIo(img, ['write -P 0x01 0 64k']);
    qemuImg(['snapshot', '-c', 'old', img]);
    qemuIo(img, ['write -P 0x02 0 64k']);
    const r = qcow(['io', '-r', '-c', 'read -P 0x01 0 64k', `${img}@old`]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(ioLines(r.stdout)).toEqual(['read 65536/65536 bytes at offset 0']);
    const now = qcow(['io', '-r', '-c', 'read -P 0x02 0 64k', img]);
    expect(now.status).toBe(0);
  });
});
