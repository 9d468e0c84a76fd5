import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type RunResult, type Scratch } from '@q/test-support';
import { ImageBytes } from './image-patch.js';

// When a read meets damage, does the image get its corrupt bit (incompatible feature bit 1)? QEMU sets it for
// broken metadata found by a read-write open, and not for compressed data that fails to decompress (an I/O error:
// the metadata is sound). Each case damages one image, reads it with qemu-io and with `qcow io`, each on its own
// copy, and compares the bit `qemu-img info` then reports.

interface CorruptBitCase {
  name: string;
  /** Makes `img.qcow2` (and any file it needs) in `dir`, damaged. */
  build(dir: string): void;
  /** What QEMU 7.2 does, observed: the test also fails if QEMU changes its mind. */
  marked: boolean;
  /** Read-only opens (`-r`): neither program may write anything, the bit included. */
  readOnly?: boolean;
}

const READ = 'read 0 64k';

function damage(dir: string, edit: (img: ImageBytes) => void): void {
  const path = join(dir, 'img.qcow2');
  const img = ImageBytes.load(path);
  edit(img);
  img.save(path);
}

/** A 1 MiB image whose first cluster is compressed (zlib or zstd), made by qemu-img convert -c. */
function compressedImage(dir: string, compression: 'zlib' | 'zstd'): void {
  const raw = join(dir, 'src.raw');
  qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
  qemuIo(raw, ['write -P 0x5a 0 64k'], { format: 'raw' });
  qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compat=1.1,compression_type=${compression}`, raw, join(dir, 'img.qcow2')]);
}

/** A 1 MiB image with an external data file (`data.raw`, beside it) and its first cluster written. */
function dataFileImage(dir: string): void {
  const path = join(dir, 'img.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'data_file=data.raw', path, '1M'], { cwd: dir });
  qemuIo(path, ['write -P 0x5a 0 64k'], { cwd: dir });
}

/** Overwrites the start of the first cluster's compressed stream with bytes that are no valid stream. */
function garbleStream(img: ImageBytes): void {
  img.put(img.compressed(0).hostOffset, new Uint8Array(64).fill(0xff));
}

const cases: CorruptBitCase[] = [
  {
    name: 'a compressed L2 entry in an image with an external data file',
    build: (dir) => {
      dataFileImage(dir);
      damage(dir, (img) => img.setCompressed(0, 0x50000, 2));
    },
    marked: true,
  },
  {
    name: 'the same, opened read-only',
    build: (dir) => {
      dataFileImage(dir);
      damage(dir, (img) => img.setCompressed(0, 0x50000, 2));
    },
    marked: false,
    readOnly: true,
  },
  { name: 'a zlib stream that does not inflate', build: (dir) => (compressedImage(dir, 'zlib'), damage(dir, garbleStream)), marked: false },
  { name: 'a zstd stream that does not decompress', build: (dir) => (compressedImage(dir, 'zstd'), damage(dir, garbleStream)), marked: false },
  {
    name: 'a compressed descriptor pointing into the header cluster',
    build: (dir) => (compressedImage(dir, 'zlib'), damage(dir, (img) => img.setCompressed(0, 0x200, 2))),
    marked: false,
  },
  {
    name: 'a compressed descriptor pointing at the L1 table',
    build: (dir) => (compressedImage(dir, 'zlib'), damage(dir, (img) => img.setCompressed(0, img.l1TableOffset, 2))),
    marked: false,
  },
  {
    // Control: broken metadata of an ordinary cluster is marked by both.
    name: 'a data cluster offset not on a cluster boundary',
    build: (dir) => {
      qemuImg(['create', '-q', '-f', 'qcow2', join(dir, 'img.qcow2'), '1M']);
      qemuIo(join(dir, 'img.qcow2'), ['write -P 0x5a 0 64k']);
      damage(dir, (img) => img.setDataOffset(0, img.dataOffset(0) + 512));
    },
    marked: true,
  },
];

/** The corrupt bit as `qemu-img info` reports it (-U: the bit must be read even where a lock is left behind). */
function corruptBit(path: string): boolean {
  const info = JSON.parse(qemuImg(['info', '-U', '--output=json', path])) as { 'format-specific': { data: { corrupt?: boolean } } };
  return info['format-specific'].data.corrupt === true;
}

function failedCleanly(result: RunResult, who: string): void {
  expect(result.status, `${who}: ${result.stdout}${result.stderr}`).not.toBe(0);
}

describe('the corrupt bit after a read meets damage, as QEMU sets it', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('qcow-corrupt-bit-');
  });
  afterAll(() => s?.cleanup());

  cases.forEach((c, index) => {
    it(c.name, () => {
      const made = s.path(`case-${index}`);
      mkdirSync(made);
      c.build(made);
      const qemuDir = s.path(`case-${index}-qemu`);
      const oursDir = s.path(`case-${index}-qcow`);
      cpSync(made, qemuDir, { recursive: true });
      cpSync(made, oursDir, { recursive: true });
      const ro = c.readOnly === true ? ['-r'] : [];
      failedCleanly(run('qemu-io', [...ro, '-f', 'qcow2', '-c', READ, 'img.qcow2'], { cwd: qemuDir }), 'qemu-io');
      failedCleanly(qcow(['io', ...ro, '-f', 'qcow2', '-c', READ, 'img.qcow2'], { cwd: oursDir }), 'qcow io');
      const qemuMarked = corruptBit(join(qemuDir, 'img.qcow2'));
      expect(qemuMarked, 'QEMU no longer behaves as observed').toBe(c.marked);
      expect(corruptBit(join(oursDir, 'img.qcow2')), 'qcow io and qemu-io disagree on the corrupt bit').toBe(qemuMarked);
    });
  });
});
