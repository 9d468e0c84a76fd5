import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, run, scratch, type Scratch } from '@q/test-support';
import { expectTwins, guestRaw, mapShape, prepare, sameBytes, sameContent, twin, type Setup } from './chain-twins.js';

// `qcow commit` against `qemu-img commit` on copies of the same chains: the base must then read as the top read
// before (data, zero clusters, grown to the top's size), the top must be emptied as qemu-img empties it (or left
// as it was with -d or -b), and qemu-img must see the same content, allocation and info fields in both.

function twoLevels(options: { overlay?: string; base?: 'qcow2' | 'raw'; baseSize?: string; baseIo?: string[] } = {}): Setup {
  const format = options.base ?? 'qcow2';
  const base = `base.${format}`;
  return {
    create: [
      ['-f', format, base, options.baseSize ?? '8M'],
      ['-f', 'qcow2', ...(options.overlay === undefined ? [] : ['-o', options.overlay]), '-b', base, '-F', format, 'top.qcow2', '8M'],
    ],
    io: [
      [base, ...(options.baseIo ?? ['write -P 0x11 0 2M', 'write -P 0x12 5M 1M'])],
      ['top.qcow2', 'write -P 0x21 64k 192k', 'write -z 1M 128k', 'write -P 0x22 4M 4k', 'write -P 0 5M 64k', 'write -z 5200k 64k', 'write -P 0x23 7M 512'],
    ],
  };
}

function threeLevels(): Setup {
  return {
    create: [
      ['-f', 'qcow2', 'base.qcow2', '4M'],
      ['-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2', '8M'],
      ['-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'],
    ],
    io: [
      ['base.qcow2', 'write -P 0x11 0 3M'],
      ['mid.qcow2', 'write -P 0x31 512k 1M', 'write -z 2M 64k', 'write -P 0x32 6M 64k'],
      ['top.qcow2', 'write -P 0x21 0 64k', 'write -z 128k 64k', 'write -P 0x22 7M 4k'],
    ],
  };
}

describe('qcow commit, as qemu-img commit', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-commit-');
  });
  afterAll(() => s.cleanup());

  const cases: Array<{ name: string; setup: Setup; args: string[]; base: string; baseFormat?: string; baseShape?: boolean; keepsTop?: boolean; others?: string[] }> = [
    { name: 'into the direct backing file, zero clusters included', setup: twoLevels(), args: [], base: 'base.qcow2' },
    { name: 'into a smaller backing file, which grows', setup: twoLevels({ baseSize: '3M', baseIo: ['write -P 0x11 0 2M', 'write -P 0x12 2560k 512k'] }), args: [], base: 'base.qcow2' },
    { name: 'into a raw backing file, which grows', setup: twoLevels({ base: 'raw', baseSize: '6M' }), args: [], base: 'base.raw', baseFormat: 'raw' },
    { name: '-d leaves the overlay as it was', setup: twoLevels(), args: ['-d'], base: 'base.qcow2', keepsTop: true },
    { name: '-q prints nothing', setup: twoLevels(), args: ['-q'], base: 'base.qcow2' },
    // qemu-img's commit job asks the top's block status one L2 table at a time (32 KiB with 512-byte clusters), so
    // its zero writes are smaller than the base's clusters and land as written zeros; ours cover whole clusters and
    // become zero clusters. Same content, another allocation in the base.
    { name: '512-byte clusters in the overlay', setup: twoLevels({ overlay: 'cluster_size=512' }), args: [], base: 'base.qcow2', baseShape: false },
    { name: '2 MiB clusters in the overlay', setup: twoLevels({ overlay: 'cluster_size=2M' }), args: [], base: 'base.qcow2' },
    { name: 'extended L2 in the overlay', setup: twoLevels({ overlay: 'extended_l2=on' }), args: [], base: 'base.qcow2' },
    { name: 'a compat 0.10 overlay', setup: twoLevels({ overlay: 'compat=0.10' }), args: [], base: 'base.qcow2' },
    { name: 'lazy refcounts in the overlay', setup: twoLevels({ overlay: 'lazy_refcounts=on' }), args: [], base: 'base.qcow2' },
    {
      name: 'an overlay with internal snapshots keeps them',
      setup: { ...twoLevels(), snapshot: [['top.qcow2', 's1']], ioAfter: [['top.qcow2', 'write -P 0x24 4M 64k']] },
      args: [],
      base: 'base.qcow2',
    },
    { name: '-b two levels down: mid and top stay as they were', setup: threeLevels(), args: ['-b', 'base.qcow2'], base: 'base.qcow2', keepsTop: true, others: ['mid.qcow2'] },
    { name: '-b naming the direct backing file implies -d', setup: threeLevels(), args: ['-b', 'mid.qcow2'], base: 'mid.qcow2', keepsTop: true },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const input = prepare(s, c.setup);
      const before = guestRaw(input, 'top.qcow2', 'before.raw');
      for (const other of c.others ?? []) copyFileSync(join(input, other), join(input, `${other}.saved`));
      const t = twin(s, input, ['commit', ...c.args, 'top.qcow2']);
      expect(t.theirs.status, t.theirs.stderr).toBe(0);
      expectTwins(t, [{ name: c.base, format: c.baseFormat, sameShape: c.baseShape }, { name: 'top.qcow2', sameShape: c.baseShape }]);
      if (c.keepsTop !== true) expect(mapShape(t.mine, 'top.qcow2').filter((entry) => entry.depth === 0 && entry.present), 'the top is emptied').toEqual([]);
      // The base holds what the top showed (over the top's size), and so does the top, through it.
      const base = sameContent(join(t.mine, c.base), before, { a: c.baseFormat ?? 'qcow2', b: 'raw' });
      expect(base.status, `base: ${base.stdout}${base.stderr}`).toBe(0);
      const top = sameContent(join(t.mine, 'top.qcow2'), before, { b: 'raw' });
      expect(top.status, `top: ${top.stdout}${top.stderr}`).toBe(0);
      if (c.keepsTop === true) expect(sameBytes(join(t.mine, 'top.qcow2'), join(input, 'top.qcow2'))).toBe(true);
      for (const other of c.others ?? []) expect(sameBytes(join(t.mine, other), join(input, `${other}.saved`)), other).toBe(true);
    });
  }

  it('data over a hole in the overlay file is copied as data (zeros), as qemu-img copies it', () => {
    const input = prepare(s, {
      create: [
        ['-f', 'qcow2', 'base.qcow2', '8M'],
        ['-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2', '8M'],
      ],
      io: [['top.qcow2', 'write -P 0x21 0 1M', 'write -P 0x22 1M 1M']],
    });
    // The first MiB's clusters stay allocated in the top, but their bytes become a hole: qemu-img map says zero
    // and data there, and qemu-img commit writes them into the base as data.
    const entries = JSON.parse(qemuImg(['map', '--output=json', 'top.qcow2'], { cwd: input })) as Array<{ start: number; offset?: number }>;
    const host = entries.find((entry) => entry.start === 0)?.offset;
    expect(host).toBeDefined();
    const punched = run('fallocate', ['-p', '-o', String(host), '-l', String(1024 * 1024), 'top.qcow2'], { cwd: input });
    expect(punched.status, punched.stderr).toBe(0);
    expect(mapShape(input, 'top.qcow2')[0]).toMatchObject({ start: 0, zero: true, data: true });
    const t = twin(s, input, ['commit', 'top.qcow2']);
    expect(t.theirs.status, t.theirs.stderr).toBe(0);
    expectTwins(t, [{ name: 'base.qcow2' }, { name: 'top.qcow2' }]);
    expect(mapShape(t.mine, 'base.qcow2')[0]).toMatchObject({ start: 0, length: 2 * 1024 * 1024, zero: false, data: true });
  });
});
