import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Image } from '@q/qcow2';
import { portableCodecs } from '@q/qcow2/portable';
import { DiskError, isDiskError, MemoryBlockFile, type BlockDevice } from '@q/raw';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { buildBaseImage } from './base-images.js';
import { deflateBomb, ImageBytes } from './image-patch.js';

// Fuzzing the engine in-process: small real images made by qemu-img, randomly mutated (biased towards the
// metadata: header, L1 and L2 tables, snapshot table), opened through Qcow2Image with the portable codecs, and read
// whole. Every run must end in success or a DiskError: never another exception, never a hang, never a write.
// Fixed seeds; a failure prints the seed, the image and the mutations to replay it.

const PER_RUN_TIMEOUT_MS = 5_000;
/** At most this much of a (possibly lying) virtual size is read, in chunks. */
const READ_CAP = 4 * 1024 * 1024;
const CHUNK = 64 * 1024;

interface FuzzImage {
  name: string;
  bytes: Uint8Array;
  /** Byte ranges of metadata, where mutations are most interesting. */
  hot: Array<[number, number]>;
  backing?: { name: string; bytes: Uint8Array };
}

function hotRanges(bytes: Buffer): Array<[number, number]> {
  const img = new ImageBytes(bytes);
  const ranges: Array<[number, number]> = [[0, Math.min(img.clusterSize, 1024)]];
  const l1 = img.l1TableOffset;
  ranges.push([l1, l1 + img.l1Size * 8]);
  for (let i = 0; i < img.l1Size; i++) {
    const l2 = img.l2TableOffset(i);
    if (l2 !== 0 && l2 < bytes.length) ranges.push([l2, Math.min(bytes.length, l2 + img.clusterSize)]);
  }
  if (img.nbSnapshots > 0) ranges.push([img.snapshotsOffset, Math.min(bytes.length, img.snapshotsOffset + 512)]);
  return ranges.filter(([a, b]) => b > a && a < bytes.length);
}

function makeImages(s: Scratch): FuzzImage[] {
  const made: Array<{ name: string; path: string; backing?: string }> = [];
  const create = (name: string, options: string, size: string, writes: string[]): void => {
    const path = s.path(name);
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', options, path, size]);
    if (writes.length > 0) qemuIo(path, writes);
    made.push({ name, path });
  };
  create('v3-512.qcow2', 'compat=1.1,cluster_size=512', '256k', ['write -P 0x11 0 2k', 'write -P 0x12 100k 1k', 'write -z 200k 4k']);
  create('v2-4k.qcow2', 'compat=0.10,cluster_size=4096', '1M', ['write -P 0x21 0 8k', 'write -P 0x22 600k 4k']);
  create('extl2-16k.qcow2', 'compat=1.1,extended_l2=on,cluster_size=16k', '1M', ['write -P 0x31 0 1k', 'write -P 0x32 16k 16k', 'write -z 40k 2k', 'write -P 0x33 512k 3k']);
  const compress = (name: string, options: string): void => {
    const raw = s.path(`${name}.src.raw`);
    qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
    qemuIo(raw, ['write -P 0x41 0 16k', 'write -P 0x42 16k 4k', 'write -P 0x43 700k 12k'], { format: 'raw' });
    const path = s.path(name);
    qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', options, raw, path]);
    made.push({ name, path });
  };
  compress('zlib-4k.qcow2', 'compat=1.1,cluster_size=4096');
  compress('zstd-4k.qcow2', 'compat=1.1,cluster_size=4096,compression_type=zstd');
  create('snap-4k.qcow2', 'compat=1.1,cluster_size=4096', '1M', ['write -P 0x51 0 8k']);
  qemuImg(['snapshot', '-c', 'first', s.path('snap-4k.qcow2')]);
  qemuIo(s.path('snap-4k.qcow2'), ['write -P 0x52 4k 8k']);
  create('base-4k.qcow2', 'compat=1.1,cluster_size=4096', '1M', ['write -P 0x61 0 64k']);
  const overlay = s.path('overlay-4k.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1,cluster_size=4096', '-b', 'base-4k.qcow2', '-F', 'qcow2', overlay]);
  qemuIo(overlay, ['write -P 0x62 8k 4k']);
  made.push({ name: 'overlay-4k.qcow2', path: overlay, backing: 'base-4k.qcow2' });
  return made.map(({ name, path, backing }) => {
    const bytes = readFileSync(path);
    const image: FuzzImage = { name, bytes: new Uint8Array(bytes), hot: hotRanges(bytes) };
    if (backing !== undefined) image.backing = { name: backing, bytes: new Uint8Array(readFileSync(s.path(backing))) };
    return image;
  });
}

type Mutation =
  | { kind: 'byte'; hot: boolean; where: number; value: number }
  | { kind: 'flip'; hot: boolean; where: number; bit: number }
  | { kind: 'u64'; hot: boolean; where: number; value: bigint }
  | { kind: 'truncate'; where: number };

const interestingU64 = fc.oneof(
  fc.constantFrom(0n, 1n, 0x200n, 0x1000n, 0x10000n, 1n << 62n, 1n << 63n, (1n << 63n) | 0x1000n, (1n << 62n) | 0x3000n, 2n ** 53n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('byte' as const), hot: fc.boolean(), where: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), hot: fc.boolean(), where: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('u64' as const), hot: fc.constant(true), where: fc.nat(), value: interestingU64 }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), where: fc.nat() }) },
);

/** A position: anywhere in the file, or inside one of its metadata ranges. */
function position(image: FuzzImage, length: number, hot: boolean, where: number): number {
  if (!hot || image.hot.length === 0) return where % length;
  const total = image.hot.reduce((n, [a, b]) => n + (b - a), 0);
  let at = where % total;
  for (const [a, b] of image.hot) {
    if (at < b - a) return Math.min(length - 1, a + at);
    at -= b - a;
  }
  return 0;
}

function mutate(image: FuzzImage, mutations: Mutation[]): Uint8Array {
  let bytes = image.bytes.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    if (m.kind === 'truncate') {
      bytes = bytes.slice(0, m.where % bytes.length);
      continue;
    }
    const at = position(image, bytes.length, m.hot, m.where);
    if (m.kind === 'byte') bytes[at] = m.value;
    else if (m.kind === 'flip') bytes[at] = bytes[at]! ^ (1 << m.bit);
    else {
      const aligned = at - (at % 8);
      if (aligned + 8 <= bytes.length) new DataView(bytes.buffer).setBigUint64(aligned, m.value);
    }
  }
  return bytes;
}

async function readAll(device: BlockDevice): Promise<void> {
  const size = device.size;
  const buffer = new Uint8Array(CHUNK);
  const end = Math.min(size, READ_CAP);
  for (let offset = 0; offset < end; offset += CHUNK) {
    const length = Math.min(CHUNK, end - offset);
    await device.read(buffer.subarray(0, length), offset);
  }
  if (size > READ_CAP) {
    // The far end of a large (or lying) device, too.
    const length = Math.min(CHUNK, size - READ_CAP);
    await device.read(buffer.subarray(0, length), size - length);
  }
  await device.blockStatus(0, Math.min(size, 2 ** 40));
}

/** Opens and reads a mutated image; resolves with 'ok' or the DiskError code; rejects on anything else. */
async function openAndRead(image: FuzzImage, bytes: Uint8Array, snapshot?: string): Promise<string> {
  const file = new MemoryBlockFile(bytes, { name: image.name, writable: false });
  const codecs = portableCodecs();
  const openBacking = async (name: string): Promise<BlockDevice> => {
    if (image.backing === undefined || name !== image.backing.name) throw new DiskError('E_NOT_FOUND', `no backing file '${name}' here`);
    return Qcow2Image.open(new MemoryBlockFile(image.backing.bytes.slice(), { name, writable: false }), { codecs });
  };
  let device: Qcow2Image | undefined;
  try {
    device = await Qcow2Image.open(file, { codecs, openBacking, snapshot });
    await readAll(device);
    return 'ok';
  } catch (error) {
    if (isDiskError(error)) return error.code;
    throw error;
  } finally {
    await device?.close().catch(() => undefined);
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${PER_RUN_TIMEOUT_MS} ms (hang)`)), PER_RUN_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('engine fuzz: mutated real images open and read to success or a DiskError', () => {
  let s: Scratch;
  let images: FuzzImage[] = [];
  beforeAll(() => {
    s = scratch('qcow-hostile-fuzz-');
    images = makeImages(s);
  });
  afterAll(() => s?.cleanup());

  it('every unmutated image reads cleanly (sanity)', async () => {
    for (const image of images) expect(await openAndRead(image, image.bytes.slice()), image.name).toBe('ok');
    const snap = images.find((i) => i.name === 'snap-4k.qcow2')!;
    expect(await openAndRead(snap, snap.bytes.slice(), 'first')).toBe('ok');
  });

  const NAMES = ['v3-512.qcow2', 'v2-4k.qcow2', 'extl2-16k.qcow2', 'zlib-4k.qcow2', 'zstd-4k.qcow2', 'snap-4k.qcow2', 'overlay-4k.qcow2'];
  NAMES.forEach((name, index) => {
    it(`${name}: random mutations`, async () => {
      const image = images.find((i) => i.name === name)!;
      const outcomes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), async (mutations, atSnapshot) => {
          const bytes = mutate(image, mutations);
          const before = bytes.slice();
          const snapshot = atSnapshot && name === 'snap-4k.qcow2' ? 'first' : undefined;
          const outcome = await withTimeout(openAndRead(image, bytes, snapshot), name);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          expect(Buffer.compare(bytes, before), 'the image bytes were not changed').toBe(0);
        }),
        { seed: 0xf022 + index, numRuns: 1500 },
      );
      if (process.env["FUZZ_VERBOSE"]) console.log(name, JSON.stringify([...outcomes]));
      // The mutations must reach past the header checks: some runs still read to the end, some fail.
      expect(outcomes.get('ok') ?? 0, JSON.stringify([...outcomes])).toBeGreaterThan(0);
      expect([...outcomes.keys()].filter((k) => k !== 'ok').length, JSON.stringify([...outcomes])).toBeGreaterThan(0);
    });
  });
});

// --- decompression bombs through the portable codecs, measured in a child process --------------------------------

const here = dirname(fileURLToPath(import.meta.url));

/** Opens `image` in a fresh Node process with the portable codecs and reads its first cluster; peak RSS in KiB. */
async function readInChild(image: string, length: number): Promise<{ outcome: string; peakRssKiB: number; elapsedMs: number }> {
  const script = `
    import { readFileSync } from 'node:fs';
    import { Qcow2Image } from '@q/qcow2';
import { portableCodecs } from '@q/qcow2/portable';
    import { isDiskError, MemoryBlockFile } from '@q/raw';
    const bytes = new Uint8Array(readFileSync(process.env.FUZZ_IMAGE));
    try {
      const image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false, name: 'bomb.qcow2' }), { codecs: portableCodecs() });
      await image.read(new Uint8Array(${length}), 0);
      console.log('ok');
    } catch (error) {
      console.log(isDiskError(error) ? 'DiskError ' + error.code + ': ' + error.message : 'OTHER ' + (error && error.name) + ': ' + (error && error.message));
    }`;
  const timeFile = join(tmpdir(), `qcow-fuzz-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const started = performance.now();
  // Asynchronous, so the test worker keeps answering vitest while the child works.
  const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', timeFile, 'timeout', '-s', 'KILL', '30', process.execPath, '--input-type=module', '-e', script], {
      cwd: join(here, '..'),
      env: { ...process.env, FUZZ_IMAGE: image },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const elapsedMs = performance.now() - started;
  const numbers = readFileSync(timeFile, 'utf8').split('\n').filter((l) => /^\d+$/.test(l.trim()));
  rmSync(timeFile, { force: true });
  const outcome = `${result.stdout.trim()}${result.stderr.trim() ? ` [stderr: ${result.stderr.trim().slice(0, 300)}]` : ''} (status ${result.status})`;
  return { outcome, peakRssKiB: Number(numbers[numbers.length - 1] ?? NaN), elapsedMs };
}

describe('decompression bombs through the portable codecs (browser path)', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('qcow-hostile-bomb-');
  });
  afterAll(() => s?.cleanup());

  it('zlib: a 1.5 MiB compressed cluster inflating to ~250 MB (2 MiB clusters) ends in a DiskError with bounded memory', async () => {
    const base = buildBaseImage(s, 'compressed2m');
    const img = new ImageBytes(Buffer.from(base.bytes));
    const at = Math.ceil(img.length / 512) * 512;
    const bomb = deflateBomb(Math.floor((1.5 * 1024 * 1024 * 8) / 13));
    img.put(at, bomb);
    img.setCompressed(0, at, Math.ceil(bomb.length / 512));
    const path = s.path('zlib-bomb.qcow2');
    img.save(path);
    const run = await readInChild(path, 2 * 1024 * 1024);
    if (process.env['FUZZ_VERBOSE']) console.log(run);
    const report = `${run.outcome}; peak RSS ${Math.round(run.peakRssKiB / 1024)} MiB; ${Math.round(run.elapsedMs)} ms`;
    expect(run.outcome, report).toMatch(/^(DiskError|ok)/);
    expect(run.peakRssKiB, report).toBeLessThan(300 * 1024);
    expect(run.elapsedMs, report).toBeLessThan(10_000);
  });

  it('zstd: a 13-byte frame declaring ~2 GiB of content but holding 1 byte is a corrupt-cluster DiskError, with bounded memory', async () => {
    const base = buildBaseImage(s, 'zstd');
    const img = new ImageBytes(Buffer.from(base.bytes));
    const { hostOffset } = img.compressed(0);
    // magic, descriptor (4-byte content size, single segment), content size 0x7fe00000, one raw last block of 1 byte
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0x00, 0x00, 0xe0, 0x7f, 0x09, 0x00, 0x00, 0x00]);
    img.put(hostOffset, frame);
    img.setCompressed(0, hostOffset, 1);
    const path = s.path('zstd-bomb.qcow2');
    img.save(path);
    const run = await readInChild(path, 64 * 1024);
    if (process.env['FUZZ_VERBOSE']) console.log(run);
    const report = `${run.outcome}; peak RSS ${Math.round(run.peakRssKiB / 1024)} MiB; ${Math.round(run.elapsedMs)} ms`;
    // One byte of content cannot fill a 64 KiB cluster: the frame lies about its size (QEMU fails such a read).
    expect(run.outcome, report).toMatch(/^DiskError E_CORRUPT/);
    expect(run.peakRssKiB, report).toBeLessThan(300 * 1024);
    expect(run.elapsedMs, report).toBeLessThan(10_000);
  });
});
