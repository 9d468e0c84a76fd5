import { copyFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { writeMixedRaw } from './oracle.js';

// `qcow compare` against `qemu-img compare`: same stdout and exit status (0 identical, 1 different, 2 error)
// for identical, different and different-size pairs, plain and strict (-s).

/** A pair of files in the scratch dir (names), with extra compare arguments; `strict` runs it with -s too. */
interface Pair {
  name: string;
  a: string;
  b: string;
  args?: string[];
  strict?: string;
}

// Strict mode compares block status extent by extent. qemu-img 7.2 counts the "extent reaches the end of the
// image" flag as part of the status, so extents that end at different places (different host layouts or
// cluster sizes) mismatch in qemu-img even when allocation and content agree; those cases are labelled.
const EOF_FLAG = ' (extents end differently: qemu-img counts the end-of-image flag)';

const pairs: Pair[] = [
  { name: 'qcow2 vs its own raw conversion', a: 'a.qcow2', b: 'mixed.raw' },
  { name: 'qcow2 64k vs qcow2 4k, same content', a: 'a.qcow2', b: 'a-4k.qcow2', strict: EOF_FLAG },
  { name: 'plain vs zstd-compressed', a: 'a-zstd.qcow2', b: 'a.qcow2' },
  { name: 'identical copies', a: 'a.qcow2', b: 'a-copy.qcow2', strict: '' },
  { name: 'one byte differs', a: 'a.qcow2', b: 'b-onebyte.qcow2', strict: '' },
  { name: 'one byte differs (reversed)', a: 'b-onebyte.qcow2', b: 'a-4k.qcow2' },
  { name: 'larger image, zeros past the end', a: 'a.qcow2', b: 'a-grown.qcow2', strict: '' },
  { name: 'larger image first, zeros past the end', a: 'a-grown.qcow2', b: 'a.qcow2' },
  { name: 'larger image with data past the end', a: 'a.qcow2', b: 'a-grown-data.qcow2', strict: '' },
  { name: 'larger image with data past the end (first)', a: 'a-grown-data.qcow2', b: 'mixed.raw' },
  { name: 'zeroed vs unallocated', a: 'z-unalloc.qcow2', b: 'z-zeroed.qcow2', strict: EOF_FLAG },
  { name: 'chain vs flattened', a: 'top.qcow2', b: 'top-flat.qcow2', strict: EOF_FLAG },
  { name: 'chain vs its base', a: 'top.qcow2', b: 'a.qcow2' },
  { name: 'raw without holes vs qcow2, explicit formats', a: 'full.raw', b: 'full.qcow2', args: ['-f', 'raw', '-F', 'qcow2'] },
  { name: 'qcow2 read as raw vs qcow2', a: 'full.qcow2', b: 'full.qcow2', args: ['-f', 'raw', '-F', 'qcow2'] },
  { name: 'missing second file', a: 'a.qcow2', b: 'nonexistent.qcow2', strict: '' },
  { name: 'missing first file', a: 'nonexistent.qcow2', b: 'a.qcow2' },
];

describe('qcow compare vs qemu-img compare', () => {
  let s: Scratch;
  const p = (name: string): string => s.path(name);

  beforeAll(() => {
    s = scratch('interop-compare-');
    writeMixedRaw(p('mixed.raw'), 4 * 1024 * 1024, 11);
    qemuImg(['convert', '-O', 'qcow2', p('mixed.raw'), p('a.qcow2')]);
    qemuImg(['convert', '-O', 'qcow2', '-o', 'cluster_size=4k', p('mixed.raw'), p('a-4k.qcow2')]);
    qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', p('mixed.raw'), p('a-zstd.qcow2')]);
    copyFileSync(p('a.qcow2'), p('a-copy.qcow2'));
    // One byte changed, deep inside the image.
    copyFileSync(p('a.qcow2'), p('b-onebyte.qcow2'));
    qemuIo(p('b-onebyte.qcow2'), ['write -P 0xfe 3000001 1']);
    // Same content, larger image, zeros past the end of the other.
    copyFileSync(p('a.qcow2'), p('a-grown.qcow2'));
    qemuImg(['resize', p('a-grown.qcow2'), '6M']);
    // Larger image with data past the end of the other.
    copyFileSync(p('a-grown.qcow2'), p('a-grown-data.qcow2'));
    qemuIo(p('a-grown-data.qcow2'), ['write -P 0x01 5M 4k']);
    // Same guest bytes, different allocation: zero clusters vs unallocated ones.
    qemuImg(['create', '-q', '-f', 'qcow2', p('z-unalloc.qcow2'), '2M']);
    qemuIo(p('z-unalloc.qcow2'), ['write -P 0x44 0 64k']);
    copyFileSync(p('z-unalloc.qcow2'), p('z-zeroed.qcow2'));
    qemuIo(p('z-zeroed.qcow2'), ['write -z 1M 64k']);
    // A chain and its flattened copy.
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', p('a.qcow2'), '-F', 'qcow2', p('top.qcow2')]);
    qemuIo(p('top.qcow2'), ['write -P 0x99 64k 64k']);
    qemuImg(['convert', '-O', 'qcow2', p('top.qcow2'), p('top-flat.qcow2')]);
    // A raw file without holes.
    qemuImg(['create', '-q', '-f', 'raw', p('full.raw'), '2M']);
    qemuIo(p('full.raw'), ['write -P 0x44 0 2M'], { format: 'raw' });
    qemuImg(['convert', '-O', 'qcow2', p('full.raw'), p('full.qcow2')]);
  });
  afterAll(() => s.cleanup());

  for (const pair of pairs) {
    for (const isStrict of [false, true]) {
      if (isStrict && pair.strict === undefined) continue;
      it(`${pair.name}${isStrict ? ` (-s)${pair.strict}` : ''}`, () => {
        const args = ['compare', ...(isStrict ? ['-s'] : []), ...(pair.args ?? []), p(pair.a), p(pair.b)];
        const q = run('qemu-img', args);
        const c = qcow(args);
        expect(c.stdout).toBe(q.stdout);
        expect(c.status).toBe(q.status);
        expect(c.stderr === '', `stderr: qemu-img said ${JSON.stringify(q.stderr)}, qcow said ${JSON.stringify(c.stderr)}`).toBe(q.stderr === '');
      });
    }
  }

  it('-q prints nothing and keeps the exit status', () => {
    for (const [a, b, status] of [
      [p('a.qcow2'), p('a-copy.qcow2'), 0],
      [p('a.qcow2'), p('b-onebyte.qcow2'), 1],
    ] as const) {
      const q = run('qemu-img', ['compare', '-q', a, b]);
      const c = qcow(['compare', '-q', a, b]);
      expect(q.status).toBe(status);
      expect(c.status).toBe(status);
      expect(c.stdout).toBe(q.stdout);
    }
  });
});
