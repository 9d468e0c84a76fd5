import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HeaderExtensionType as T,
  qcow,
  qemuImg,
  qemuIo,
  readHeaderArea,
  rewriteHeaderExtensions,
  scratch,
  type HeaderExtension,
  type Scratch,
} from '@q/test-support';
import { expectSameRaw, withoutActualSize } from './oracle.js';

// Header extensions: known ones (backing format, feature names, bitmaps, external data file) must be honoured,
// unknown ones skipped whatever their length and position.

const unknown = (type: number, length: number): HeaderExtension => ({ type, data: Buffer.alloc(length, 0xa5) });

interface ExtCase {
  name: string;
  /** Builds the image in `dir`; returns its path. */
  build(s: Scratch, tag: string): string;
  /** Known extension types the image must carry before editing (sanity of the oracle image). */
  expectKnown: number[];
  edit(exts: HeaderExtension[]): HeaderExtension[];
}

function plain(s: Scratch, tag: string, opts: string): string {
  const img = s.path(`${tag}.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', opts, img, '4M']);
  qemuIo(img, ['write -P 0x31 0 64k', 'write -P 0x32 1M 4k', 'write -P 0x33 3M 100k']);
  return img;
}

function withBacking(s: Scratch, tag: string, compat: string): string {
  const base = s.path(`${tag}-base.raw`);
  qemuImg(['create', '-q', '-f', 'raw', base, '4M']);
  qemuIo(base, ['write -P 0x41 0 4M'], { format: 'raw' });
  const img = s.path(`${tag}.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', `compat=${compat}`, '-b', base, '-F', 'raw', img]);
  qemuIo(img, ['write -P 0x42 64k 64k', 'write -z 1M 64k']);
  return img;
}

function withBitmaps(s: Scratch, tag: string): string {
  const img = plain(s, tag, 'compat=1.1');
  qemuImg(['bitmap', '--add', img, 'b0']);
  qemuImg(['bitmap', '--add', '-g', '128k', img, 'b1']);
  qemuIo(img, ['write -P 0x34 2M 64k']);
  qemuImg(['bitmap', '--disable', img, 'b1']);
  return img;
}

function withDataFile(s: Scratch, tag: string): string {
  const img = s.path(`${tag}.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${s.path(`${tag}.data`)}`, img, '4M']);
  qemuIo(img, ['write -P 0x51 0 64k', 'write -P 0x52 2M 8k']);
  return img;
}

const cases: ExtCase[] = [
  {
    name: 'v3, unknown extensions of length 0, 5, 8 and 13 in front',
    build: (s, t) => plain(s, t, 'compat=1.1'),
    expectKnown: [T.featureNameTable],
    edit: (exts) => [unknown(0x12345678, 0), unknown(0x7fffffff, 5), unknown(0x80000001, 8), unknown(0xdeadbeef, 13), ...exts],
  },
  {
    name: 'v3, unknown extension after the feature name table',
    build: (s, t) => plain(s, t, 'compat=1.1,cluster_size=8192'),
    expectKnown: [T.featureNameTable],
    edit: (exts) => [...exts, unknown(0x0badc0de, 21)],
  },
  {
    // qemu-img 7.2 writes no feature name table when clusters are 4 KiB or smaller.
    name: 'v3, 4 KiB clusters (no extensions at all), unknown extension added',
    build: (s, t) => plain(s, t, 'compat=1.1,cluster_size=4096'),
    expectKnown: [],
    edit: (exts) => [...exts, unknown(0x0badc0de, 21)],
  },
  {
    name: 'v3, 512-byte clusters, unknown extension filling most of the header cluster',
    build: (s, t) => plain(s, t, 'compat=1.1,cluster_size=512'),
    expectKnown: [],
    edit: (exts) => [...exts, unknown(0x0badf00d, 512 - 112 - 8 - 8 - 8)],
  },
  {
    name: 'v3, feature name table removed',
    build: (s, t) => plain(s, t, 'compat=1.1'),
    expectKnown: [T.featureNameTable],
    edit: (exts) => exts.filter((e) => e.type !== T.featureNameTable),
  },
  {
    name: 'v2 with raw backing: backing format then unknown extension',
    build: (s, t) => withBacking(s, t, '0.10'),
    expectKnown: [T.backingFormat],
    edit: (exts) => [...exts, unknown(0x11223344, 3)],
  },
  {
    name: 'v3 with raw backing: unknown extensions around the backing format',
    build: (s, t) => withBacking(s, t, '1.1'),
    expectKnown: [T.backingFormat, T.featureNameTable],
    edit: (exts) => [unknown(0x01010101, 16), ...exts.slice(0, 1), unknown(0x02020202, 7), ...exts.slice(1)],
  },
  {
    name: 'v3 with persistent bitmaps and an unknown extension',
    build: (s, t) => withBitmaps(s, t),
    expectKnown: [T.bitmaps, T.featureNameTable],
    edit: (exts) => [unknown(0x55aa55aa, 40), ...exts],
  },
  {
    name: 'v3 with external data file name and an unknown extension',
    build: (s, t) => withDataFile(s, t),
    expectKnown: [T.externalDataFile, T.featureNameTable],
    edit: (exts) => [...exts, unknown(0x66666666, 1)],
  },
];

describe('header extensions', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-hdrext-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(`${c.name}: as qemu-img made it`, async () => {
      const img = c.build(s, `orig${i}`);
      const types = readHeaderArea(img).extensions.map((e) => e.type);
      for (const t of c.expectKnown) expect(types).toContain(t);
      await expectSameRaw(s, img);
    });

    it(`${c.name}: edited`, async () => {
      const img = c.build(s, `edit${i}`);
      const before = readHeaderArea(img);
      rewriteHeaderExtensions(img, c.edit);
      const after = readHeaderArea(img);
      expect(after.backingName).toEqual(before.backingName);
      expect(after.extensions.map((e) => e.type)).toEqual(c.edit(before.extensions).map((e) => e.type));
      // qemu-img check must still accept the edited image, so the oracle is reading a valid file.
      qemuImg(['check', '-q', img]);
      await expectSameRaw(s, img);
      // info must skip the unknown extensions too.
      const q = withoutActualSize(JSON.parse(qemuImg(['info', '--output=json', img])));
      const r = qcow(['info', '--output=json', img]);
      expect(r.status, r.stderr).toBe(0);
      expect(withoutActualSize(JSON.parse(r.stdout))).toEqual(q);
    });
  });
});
