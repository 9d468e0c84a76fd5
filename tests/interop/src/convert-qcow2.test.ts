import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, type Scratch } from '@q/test-support';
import { buildChain } from './chain-builder.js';
import { MiB, writeMixedRaw } from './oracle.js';

// `qcow convert -O qcow2`: every output passes qemu-img check and equals its source by qemu-img compare;
// compressed outputs are compressed, as small as qemu-img's (within 5%), and deterministic.

interface CheckJson {
  'compressed-clusters'?: number;
  'allocated-clusters'?: number;
  corruptions?: number;
  leaks?: number;
}

function convert(args: string[]): void {
  const result = qcow(['convert', ...args]);
  expect(result.status, result.stderr).toBe(0);
}

/** qemu-img check (clean, exit 0) and compare (identical) against `source` opened with `sourceArgs`. */
function expectGood(image: string, source: string, sourceArgs: string[] = []): CheckJson {
  const check = run('qemu-img', ['check', '--output=json', image]);
  expect(check.status, check.stdout + check.stderr).toBe(0);
  const compare = run('qemu-img', ['compare', ...sourceArgs, source, image]);
  expect(compare.status, compare.stdout + compare.stderr).toBe(0);
  return JSON.parse(check.stdout) as CheckJson;
}

function info(image: string): { 'virtual-size': number; 'format-specific': { data: Record<string, unknown> }; 'backing-filename'?: string } {
  return JSON.parse(qemuImg(['info', '--output=json', image])) as ReturnType<typeof info>;
}

describe('qcow convert -O qcow2', () => {
  let s: Scratch;
  let mixed: string;
  beforeAll(() => {
    s = scratch('interop-convq-');
    // Data, zeros and text-like runs; the size is no multiple of any cluster size, so the last cluster is partial.
    mixed = writeMixedRaw(s.path('mixed.raw'), 3 * MiB + 512, 11);
  });
  afterAll(() => s.cleanup());

  for (const clusterSize of ['512', '4k', '64k', '2M']) {
    it(`cluster_size=${clusterSize}: plain, zlib and zstd outputs check clean and equal the source`, () => {
      const plain = s.path(`plain-${clusterSize}.qcow2`);
      convert(['-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, mixed, plain]);
      expect(expectGood(plain, mixed)['compressed-clusters'] ?? 0).toBe(0);
      for (const type of ['zlib', 'zstd']) {
        const ours = s.path(`c-${type}-${clusterSize}.qcow2`);
        const theirs = s.path(`q-${type}-${clusterSize}.qcow2`);
        convert(['-c', '-O', 'qcow2', '-o', `cluster_size=${clusterSize},compression_type=${type}`, mixed, ours]);
        qemuImg(['convert', '-c', '-O', 'qcow2', '-o', `cluster_size=${clusterSize},compression_type=${type}`, mixed, theirs]);
        expect(expectGood(ours, mixed)['compressed-clusters']).toBeGreaterThan(0);
        expect(info(ours)['format-specific'].data['compression-type']).toBe(type);
        expect(statSync(ours).size).toBeLessThanOrEqual(statSync(theirs).size * 1.05);
      }
    });
  }

  it('refcount widths, extended L2, lazy refcounts and compat 0.10', () => {
    const variants = ['refcount_bits=1', 'refcount_bits=2', 'refcount_bits=64', 'extended_l2=on', 'lazy_refcounts=on', 'compat=0.10', 'compat=0.10,cluster_size=4k'];
    for (const [i, options] of variants.entries()) {
      for (const compress of [[], ['-c']]) {
        const out = s.path(`v${i}-${compress.length}.qcow2`);
        convert([...compress, '-O', 'qcow2', '-o', options, mixed, out]);
        const check = expectGood(out, mixed);
        if (compress.length > 0) expect(check['compressed-clusters']).toBeGreaterThan(0);
      }
    }
  });

  it('preallocation and an external data file go through the engine and check clean', () => {
    for (const mode of ['metadata', 'falloc', 'full']) {
      const out = s.path(`pre-${mode}.qcow2`);
      convert(['-O', 'qcow2', '-o', `preallocation=${mode}`, mixed, out]);
      expectGood(out, mixed);
    }
    const out = s.path('df.qcow2');
    convert(['-O', 'qcow2', '-o', `data_file=${s.path('df.raw')}`, mixed, out]);
    expectGood(out, mixed);
  });

  it('sources: a chain, a compressed image, FILE@SNAP and -l keep their content; -l takes the current size', () => {
    const chain = buildChain(s, 'ch', [
      { format: 'raw', size: 2 * MiB },
      { format: 'qcow2', size: 3 * MiB, opts: 'cluster_size=4k' },
      { format: 'qcow2', size: 4 * MiB, opts: 'cluster_size=64k,extended_l2=on' },
    ]);
    const fromChain = s.path('from-chain.qcow2');
    convert(['-c', '-O', 'qcow2', chain[2]!, fromChain]);
    expectGood(fromChain, chain[2]!);

    const comp = s.path('zstd-src.qcow2');
    qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd,cluster_size=4k', mixed, comp]);
    const fromComp = s.path('from-comp.qcow2');
    convert(['-O', 'qcow2', comp, fromComp]);
    expectGood(fromComp, mixed);

    const snap = s.path('snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', snap, '2M']);
    qemuIo(snap, ['write -P 0x21 0 1M']);
    qemuImg(['snapshot', '-c', 'keep', snap]);
    qemuImg(['resize', '-q', snap, '3M']);
    qemuIo(snap, ['write -P 0x22 512k 1M']);
    const viaL = s.path('via-l.qcow2');
    const qemuViaL = s.path('qemu-via-l.qcow2');
    convert(['-O', 'qcow2', '-l', 'snapshot.name=keep', snap, viaL]);
    qemuImg(['convert', '-O', 'qcow2', '-l', 'snapshot.name=keep', snap, qemuViaL]);
    expect(info(viaL)['virtual-size']).toBe(3 * MiB);
    expectGood(viaL, qemuViaL);
    const viaAt = s.path('via-at.qcow2');
    convert(['-O', 'qcow2', `${snap}@keep`, viaAt]);
    expect(info(viaAt)['virtual-size']).toBe(2 * MiB);
  });

  it('-B writes what qemu-img convert -B writes: the top image, its zeros flagged', () => {
    const base = s.path('b-base.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', base, '4M']);
    qemuIo(base, ['write -P 1 0 2M']);
    const top = s.path('b-top.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    qemuIo(top, ['write -P 2 1M 64k', 'write -z 0 64k', 'write -P 0 3M 64k']);
    copyFileSync(base, s.path('b-new.qcow2'));
    for (const compat of ['1.1', '0.10']) {
      const ours = s.path(`b-ours-${compat}.qcow2`);
      const theirs = s.path(`b-theirs-${compat}.qcow2`);
      convert(['-O', 'qcow2', '-o', `compat=${compat}`, '-B', 'b-new.qcow2', '-F', 'qcow2', top, ours]);
      qemuImg(['convert', '-O', 'qcow2', '-o', `compat=${compat}`, '-B', 'b-new.qcow2', '-F', 'qcow2', top, theirs]);
      expectGood(ours, top);
      expect(info(ours)['backing-filename']).toBe('b-new.qcow2');
      const layout = (image: string): unknown => (JSON.parse(qemuImg(['map', '--output=json', image])) as Array<Record<string, unknown>>).map(({ offset: _, ...rest }) => rest);
      expect(layout(ours)).toEqual(layout(theirs));
    }
  });

  it('-n writes into an existing image (old data overwritten), with -c and --target-is-zero', () => {
    for (const args of [[], ['-c'], ['--target-is-zero']]) {
      const target = s.path(`n-${args.join('')}.qcow2`);
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', target, '4M']);
      if (args[0] !== '--target-is-zero') qemuIo(target, ['write -P 0x55 0 4M']);
      convert(['-n', ...args, '-O', 'qcow2', mixed, target]);
      qemuImg(['resize', '-q', '--shrink', target, String(3 * MiB + 512)]);
      const check = expectGood(target, mixed);
      if (args[0] === '-c') expect(check['compressed-clusters']).toBeGreaterThan(0);
    }
  });

  it('a 4 TiB image with data far apart: plain, -c, -B and -n write what qemu-img writes, the empty space a run at a time', () => {
    // Empty space used to be planned cluster by cluster (2 TiB: 33 million of them, seconds); now a run at a time.
    const TiB = 2 ** 40;
    const io = ['write -P 1 0 64k', `write -P 2 ${TiB + 65536} 128k`, `write -z ${2 * TiB} 1M`, `write -P 3 ${4 * TiB - 65536} 64k`];
    const far = s.path('far.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', far, '4T']);
    qemuIo(far, io);
    const farBase = s.path('far-base.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', farBase, '4T']);
    qemuIo(farBase, ['write -P 9 0 1M', `write -P 9 ${3 * TiB} 1M`]);
    const farTop = s.path('far-top.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', farBase, '-F', 'qcow2', farTop]);
    qemuIo(farTop, io);
    const layout = (image: string): unknown => (JSON.parse(qemuImg(['map', '--output=json', image])) as Array<Record<string, unknown>>).map(({ offset: _, ...rest }) => rest);
    const cases: Array<{ name: string; args: string[]; source: string }> = [
      { name: 'plain', args: [], source: far },
      { name: 'zlib', args: ['-c'], source: far },
      { name: 'backing', args: ['-B', 'far-base.qcow2', '-F', 'qcow2'], source: farTop },
    ];
    for (const c of cases) {
      const ours = s.path(`far-ours-${c.name}.qcow2`);
      const theirs = s.path(`far-theirs-${c.name}.qcow2`);
      convert(['-O', 'qcow2', ...c.args, c.source, ours]);
      qemuImg(['convert', '-O', 'qcow2', ...c.args, c.source, theirs]);
      expectGood(ours, c.source);
      expect(layout(ours), c.name).toEqual(layout(theirs));
    }
    // -n: what the target held where the source has nothing is zeroed.
    const target = s.path('far-n.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', target, '4T']);
    qemuIo(target, ['write -P 0x55 0 1M', `write -P 0x55 ${3 * TiB} 64k`]);
    convert(['-n', '-O', 'qcow2', far, target]);
    expectGood(target, far);
    // A target over a backing file: what it leaves unallocated shows the backing file, so it is zeroed too (a
    // small one: that is a zero flag per cluster, for qemu-img as well).
    const small = s.path('n-small.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', small, '64M']);
    qemuIo(small, ['write -P 4 1M 64k']);
    const smallBase = s.path('n-small-base.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', smallBase, '64M']);
    qemuIo(smallBase, ['write -P 5 0 8M', 'write -P 5 60M 4M']);
    const over = s.path('n-over.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', smallBase, '-F', 'qcow2', over]);
    qemuIo(over, ['write -P 6 32M 64k']);
    convert(['-n', '-O', 'qcow2', small, over]);
    expectGood(over, small);
  });

  it('-S: all-zero clusters stay unallocated by default; -S 0 allocates every cluster', () => {
    const raw = s.path('sparse.raw');
    const bytes = new Uint8Array(1 * MiB);
    bytes.fill(7, 0, 4096);
    writeFileSync(raw, bytes);
    const sparse = s.path('sparse.qcow2');
    const full = s.path('full.qcow2');
    convert(['-O', 'qcow2', raw, sparse]);
    convert(['-S', '0', '-O', 'qcow2', raw, full]);
    expect(expectGood(sparse, raw)['allocated-clusters']).toBe(1);
    expect(expectGood(full, raw)['allocated-clusters']).toBe(16);
  });

  it('is deterministic: two compressed conversions are byte-identical', () => {
    for (const type of ['zlib', 'zstd']) {
      const a = s.path(`det-a-${type}.qcow2`);
      const b = s.path(`det-b-${type}.qcow2`);
      convert(['-c', '-O', 'qcow2', '-o', `compression_type=${type}`, mixed, a]);
      convert(['-c', '-m', '1', '-O', 'qcow2', '-o', `compression_type=${type}`, mixed, b]);
      expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    }
  });

  it("refuses what qemu-img refuses, with qemu-img's message and exit code", () => {
    const raw = s.path('r.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('small.qcow2'), '512k']);
    qemuImg(['create', '-q', '-f', 'raw', s.path('small.raw'), '512k']);
    const cases: string[][] = [
      ['-c', '-O', 'raw', raw, 'x.raw'],
      ['--target-is-zero', '-O', 'qcow2', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-B', 'b-new.qcow2', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-o', 'cluster_size=1000', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-o', 'foo=1', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-S', '3', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-m', '17', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-c', '-o', 'preallocation=full', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-c', '-o', 'compression_type=lz4', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-F', 'qcow2', raw, 'x.qcow2'],
      ['-n', '-O', 'qcow2', raw, 'small.qcow2'],
      ['-n', '-O', 'qcow2', '-o', 'cluster_size=4k', raw, 'small.qcow2'],
      ['-n', '-O', 'raw', raw, 'small.raw'],
      ['-O', 'qcow2', '-S', '-1', raw, 'x.qcow2'],
      ['-O', 'qcow2', '-r', 'abc', raw, 'x.qcow2'],
      ['-O', 'qcow2', raw],
      ['-O', 'qcow2', '-B', 'missing.qcow2', '-F', 'qcow2', raw, 'x.qcow2'],
    ];
    for (const args of cases) {
      const theirs = run('qemu-img', ['convert', ...args], { cwd: s.dir });
      const ours = qcow(['convert', ...args], { cwd: s.dir });
      expect(ours.status, args.join(' ')).toBe(theirs.status);
      const firstLine = (text: string): string => text.split('\n')[0]!.replace(/^(qemu-img|qcow): /, '');
      expect(firstLine(ours.stderr), args.join(' ')).toBe(firstLine(theirs.stderr));
    }
  });

  it('--salvage turns unreadable clusters into zeros with a warning; without it the convert fails', () => {
    const good = s.path('salvage-src.qcow2');
    qemuImg(['convert', '-c', '-O', 'qcow2', mixed, good]);
    const bad = s.path('salvage-bad.qcow2');
    copyFileSync(good, bad);
    // Garble the second compressed cluster's stream (its offset from qemu-img map).
    const l1 = readFileSync(bad).readBigUInt64BE(40);
    const l2 = Number(readFileSync(bad).readBigUInt64BE(Number(l1)) & 0x00ff_ffff_ffff_fe00n);
    const entry = readFileSync(bad).readBigUInt64BE(l2 + 8);
    const host = Number(entry & ((1n << 54n) - 1n));
    const file = readFileSync(bad);
    file.fill(0xff, host, host + 16);
    writeFileSync(bad, file);
    const refused = qcow(['convert', '-O', 'qcow2', bad, s.path('salvaged.qcow2')]);
    expect(refused.status).toBe(1);
    const salvaged = qcow(['convert', '--salvage', '-O', 'qcow2', bad, s.path('salvaged.qcow2')]);
    expect(salvaged.status, salvaged.stderr).toBe(0);
    expect(salvaged.stderr).toMatch(/^qcow: warning: error while reading offset 65536 \(65536 bytes\): /m);
    const check = run('qemu-img', ['check', s.path('salvaged.qcow2')]);
    expect(check.status).toBe(0);
    const qemuSalvaged = s.path('qemu-salvaged.raw');
    run('qemu-img', ['convert', '--salvage', '-O', 'raw', bad, qemuSalvaged]);
    expect(run('qemu-img', ['compare', qemuSalvaged, s.path('salvaged.qcow2')]).status).toBe(0);
  });
});
