import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW_CLI, qcow, qemuImg, qemuIo, run, runBinary, scratch, type Scratch } from '@q/test-support';
import { ioLines, KiB, MiB, TiB } from './oracle.js';

// A 16 TiB sparse image (64 KiB clusters) with data at a few offsets: converting it to raw must be quick, use
// bounded memory, and put the same bytes at the same offsets. (Nothing here hashes 16 TiB.)

const SIZE = 16 * TiB;
const writes: Array<{ offset: number; length: number; pattern: number; compressed?: boolean }> = [
  { offset: 0, length: 64 * KiB, pattern: 0xa1 },
  { offset: 8 * TiB - 32 * KiB, length: 64 * KiB, pattern: 0xa2 }, // straddles 8 TiB (and an L2 table boundary)
  { offset: 12 * TiB + 5 * MiB, length: 64 * KiB, pattern: 0xa4, compressed: true },
  { offset: SIZE - 64 * KiB, length: 64 * KiB, pattern: 0xa3 }, // the last cluster
];
const holes = [64 * KiB, 4 * TiB, 8 * TiB + 32 * KiB, 16 * TiB - 128 * KiB];

/**
 * Runs the CLI inside a node process that prints its own peak RSS (KiB, getrusage) on exit: the same number
 * `/usr/bin/time -f %M` gives, without needing GNU time on the machine.
 */
const PEAK_RSS_WRAPPER = [
  "import { writeSync } from 'node:fs';",
  "import { pathToFileURL } from 'node:url';",
  "process.on('exit', () => writeSync(2, `maxrss-kib=${process.resourceUsage().maxRSS}\\n`));",
  'const [cli, ...args] = process.argv.slice(1);',
  'process.argv = [process.argv[0], cli, ...args];',
  'await import(pathToFileURL(cli).href);',
].join('\n');

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, offset);
    expect(n).toBe(length);
    return buf;
  } finally {
    closeSync(fd);
  }
}

describe('16 TiB sparse image', () => {
  let s: Scratch;
  let img: string;
  let out: string;
  beforeAll(() => {
    s = scratch('interop-huge-');
    img = s.path('huge.qcow2');
    out = s.path('huge.raw');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=64k', img, String(SIZE)]);
    qemuIo(img, writes.map((w) => `write ${w.compressed ? '-c ' : ''}-P ${w.pattern} ${w.offset} ${w.length}`));
  });
  afterAll(() => s.cleanup());

  it('qcow convert -O raw finishes quickly, with peak RSS under 200 MiB, into a sparse file', () => {
    const started = Date.now();
    const r = run(process.execPath, ['--input-type=module', '-e', PEAK_RSS_WRAPPER, QCOW_CLI, 'convert', '-O', 'raw', img, out], { timeoutMs: 120_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(r.status, r.stderr).toBe(0);
    const peakKiB = Number(/maxrss-kib=(\d+)/.exec(r.stderr)?.[1]);
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB, `peak RSS ${peakKiB} KiB`).toBeLessThan(200 * 1024);
    expect(seconds, `convert took ${seconds}s`).toBeLessThan(60);
    const st = statSync(out);
    expect(st.size).toBe(SIZE);
    expect(st.blocks * 512, 'the raw output is sparse').toBeLessThan(64 * MiB);
  });

  it('the output holds the written bytes at their offsets and zeros elsewhere (fs reads)', () => {
    for (const w of writes) expect(readAt(out, w.offset, w.length).equals(Buffer.alloc(w.length, w.pattern)), `bytes at ${w.offset}`).toBe(true);
    for (const h of holes) expect(readAt(out, h, 64 * KiB).equals(Buffer.alloc(64 * KiB)), `zeros at ${h}`).toBe(true);
  });

  it('dd reads of the output equal qemu-io reads of the image', () => {
    for (const w of [...writes, ...holes.map((offset) => ({ offset, length: 64 * KiB }))]) {
      const dd = runBinary('dd', [`if=${out}`, 'iflag=skip_bytes,count_bytes', `skip=${w.offset}`, `count=${w.length}`, 'status=none']);
      const pattern = 'pattern' in w ? (w.pattern as number) : 0;
      expect(dd.equals(Buffer.alloc(w.length, pattern)), `dd at ${w.offset}`).toBe(true);
      // The same range through qemu-io with the same pattern must verify.
      qemuIo(img, [`read -P ${pattern} ${w.offset} ${w.length}`]);
    }
  });

  it('qcow io -r read -P gives qemu-io\'s lines at those offsets, and a mismatch exits 1', () => {
    const commands = [
      ...writes.map((w) => `read -P ${w.pattern} ${w.offset} ${w.length}`),
      ...holes.map((h) => `read -P 0 ${h} 64k`),
    ];
    const args = commands.flatMap((c) => ['-c', c]);
    const q = run('qemu-io', ['-r', '-f', 'qcow2', ...args, img]);
    const c = qcow(['io', '-r', '-f', 'qcow2', ...args, img]);
    expect(q.status).toBe(0);
    expect(c.status, c.stderr).toBe(0);
    expect(ioLines(c.stdout)).toEqual(ioLines(q.stdout));

    const bad = ['-c', `read -P 0xa2 ${8 * TiB - 64 * KiB} 64k`];
    const qb = run('qemu-io', ['-r', '-f', 'qcow2', ...bad, img]);
    const cb = qcow(['io', '-r', '-f', 'qcow2', ...bad, img]);
    expect(qb.status).toBe(1);
    expect(cb.status).toBe(1);
    expect(ioLines(cb.stdout)).toEqual(ioLines(qb.stdout));
  });

  it('qcow map --output=json equals qemu-img map', () => {
    const c = qcow(['map', '--output=json', img]);
    expect(c.status, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toEqual(JSON.parse(qemuImg(['map', '--output=json', img])));
  });

  it('qemu-img compare finds the qcow output identical to the image', () => {
    const r = run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', img, out], { timeoutMs: 120_000 });
    expect(r.stdout.trim()).toBe('Images are identical.');
    expect(r.status).toBe(0);
  });
});
