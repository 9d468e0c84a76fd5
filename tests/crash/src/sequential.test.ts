import { writeFileSync } from 'node:fs';
import { isDiskError, MemoryBlockFile, RecordingBlockFile } from '@q/raw';
import { defaultCreateOptions, Qcow2Image, SequentialImageWriter, type SequentialImageOptions } from '@q/qcow2';
import { nodeCodecs, nodeCompressor } from '@q/qcow2/node';
import { scratch } from '@q/test-support';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICIES } from './harness.js';
import { qemuBase } from './images.js';
import { qemuCheck, runAsync, runPool } from './qemu-check.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The sequential writer's crash contract (qcow convert -O qcow2 into a fresh file). The header is written last,
 * after the data, L2 tables and refcounts are synced and then the L1 table is synced; so a crash anywhere leaves
 * either
 *  - a file without the qcow2 magic: not an image at all (the engine refuses it, `qemu-img check -f qcow2` says
 *    "Image is not in qcow2 format"; probed without -f it is a raw file, as any partial download is), or
 *  - the whole image: clean (no corruption, no leak) and reading exactly the source.
 * Never a qcow2 image with wrong or missing content. (qemu-img convert's own partial output is a valid image whose
 * unwritten clusters read as zeros: its header goes first. Either way a partial output is redone, not used; ours
 * cannot be mistaken for a finished one.)
 *
 * Over an old image at the same path, a third outcome: the old file untouched (nothing of the conversion was
 * durable yet). The writer's truncation must be durable before new bytes land, or a crash could pair the old
 * header with new bytes written over the old image's tables.
 */
describe('crash consistency: SequentialImageWriter (convert into a fresh image)', () => {
  const scenarios: Array<{ name: string; options: SequentialImageOptions; clusters: number; old?: () => Uint8Array }> = [
    { name: '64k-zlib', options: defaultCreateOptions(4 * MiB), clusters: 64 },
    { name: '4k-zstd-refcount1', options: { ...defaultCreateOptions(1 * MiB), clusterBits: 12, refcountOrder: 0, compressionType: 'zstd' }, clusters: 256 },
    // Refcounts past the up-front reservation (a 4 MiB disk may need 130 refcount clusters, more than the 64
    // reserved): they go at the end, after the data. 400 of its 8192 clusters written keep the log short.
    { name: '512-refcount64-at-end', options: { ...defaultCreateOptions(4 * MiB), clusterBits: 9, refcountOrder: 6 }, clusters: 400 },
    {
      // Regression (lost truncation over an old image): without a sync after emptying the file, a crash kept the
      // old header over new bytes written across its L2 tables and data: an image reading wrong bytes.
      name: 'regression-lost-truncation-over-an-old-image',
      options: defaultCreateOptions(4 * MiB),
      clusters: 64,
      old: () => qemuBase(4 * MiB, '', [{ op: 'write', offset: 0, length: 4 * MiB, pattern: 0x5e }]).bytes,
    },
  ];
  for (const scenario of scenarios) {
    it(`${scenario.name}: every cut of the write log is no image or the whole image`, async () => {
      const result = await crashRun(scenario.name, scenario.options, scenario.clusters, scenario.old?.() ?? new Uint8Array(0));
      console.log(
        `sequential ${scenario.name}: ${result.ops} file ops, ${result.cuts} crash points, ${result.images} crash images (${result.notImages} not an image, ${result.whole} whole, ${result.untouched} the old file), ` +
          `${result.qemuRefusals} refused by qemu-img, ${result.qemuChecked} whole ones checked by qemu-img`,
      );
      expect(result.failures.slice(0, 5)).toEqual([]);
      expect(result.whole).toBeGreaterThan(0);
      expect(result.notImages).toBeGreaterThan(0);
    });
  }
});

/** The guest bytes of the source: every 5th cluster a hole, every 7th a zero run, half of the rest compressible. */
function sourceCluster(cluster: number, clusterSize: number): { kind: 'hole' | 'zero' | 'data' | 'compressed'; bytes: Uint8Array } {
  const bytes = new Uint8Array(clusterSize);
  if (cluster % 5 === 4) return { kind: 'hole', bytes };
  if (cluster % 7 === 6) return { kind: 'zero', bytes };
  bytes.fill((cluster * 29 + 3) & 0xff);
  for (let at = 0; at < clusterSize; at += 512) bytes[at] = (cluster + at) & 0xff;
  return { kind: cluster % 2 === 0 ? 'compressed' : 'data', bytes };
}

async function crashRun(name: string, options: SequentialImageOptions, clusters: number, old: Uint8Array) {
  const clusterSize = 2 ** options.clusterBits;
  const recording = await RecordingBlockFile.wrap(new MemoryBlockFile(old.slice(), { name }));
  const writer = await SequentialImageWriter.create(recording, options);
  const compressor = nodeCompressor(options.compressionType);
  const guest = new Uint8Array(options.size);
  for (let cluster = 0; cluster < clusters; cluster++) {
    const { kind, bytes } = sourceCluster(cluster, clusterSize);
    guest.set(bytes, cluster * clusterSize);
    if (kind === 'zero') await writer.writeZero(cluster);
    else if (kind === 'data') await writer.writeData(cluster, bytes);
    else if (kind === 'compressed') await writer.writeCompressed(cluster, compressor.compress(bytes)!);
  }
  await writer.finish();

  const failures: string[] = [];
  const whole: Array<{ cut: number; bytes: Uint8Array }> = [];
  const refused: Array<{ cut: number; bytes: Uint8Array }> = [];
  let images = 0;
  let untouched = 0;
  const cuts = crashCuts(recording);
  for (const [n, cut] of cuts.entries()) {
    // Materializing is synchronous: give vitest's worker a turn now and then, or its reports time out.
    if (n % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const seen = new Set<string>();
    for (const policy of DEFAULT_POLICIES) {
      const state = recording.crash(cut, policy);
      const key = state.applied.join(',');
      if (seen.has(key)) continue;
      seen.add(key);
      images++;
      const where = `cut ${cut} of ${recording.opCount}, ${policy.kind}${'seed' in policy ? ` ${policy.seed}` : ''}`;
      const magic = state.bytes.length >= 4 && state.bytes[0] === 0x51 && state.bytes[1] === 0x46 && state.bytes[2] === 0x49 && state.bytes[3] === 0xfb;
      if (old.length > 0 && sameBytes(state.bytes, old)) {
        untouched++;
        continue;
      }
      if (!magic) {
        const refusal = await engineRefusal(state.bytes);
        if (refusal !== undefined) failures.push(`${where}: no magic, but ${refusal}`);
        // A sample for qemu-img: the first few, some between, and the last (everything but the header).
        if (refused.length < 6 || cut % 97 === 0 || cut >= recording.opCount - 3) refused.push({ cut, bytes: state.bytes });
        continue;
      }
      const problem = await wholeImageProblem(state.bytes, guest);
      if (problem !== undefined) failures.push(`${where}: a qcow2 header, but ${problem}`);
      whole.push({ cut, bytes: state.bytes });
    }
  }

  // QEMU's view: headerless files are refused as qcow2; whole images are clean and read the source.
  const dir = scratch(`qcow-crash-sequential-${name}-`);
  let qemuRefusals = 0;
  let qemuChecked = 0;
  try {
    const raw = dir.path('expected.raw');
    writeFileSync(raw, guest);
    const sample = refused.length <= 16 ? refused : [...refused.slice(0, 6), ...refused.slice(-10)];
    await runPool(sample, 2, async ({ cut, bytes }, index) => {
      const path = dir.path(`refused-${index}.qcow2`);
      writeFileSync(path, bytes);
      const check = await runAsync('qemu-img', ['check', '-f', 'qcow2', path]);
      if (check.status !== 1 || !check.stderr.includes('not in qcow2 format')) failures.push(`cut ${cut}: qemu-img check -f qcow2 exits ${check.status}: ${check.stderr.trim()}`);
      else qemuRefusals++;
    });
    await runPool(whole.slice(-4), 2, async ({ cut, bytes }, index) => {
      const path = dir.path(`whole-${index}.qcow2`);
      writeFileSync(path, bytes);
      const report = await qemuCheck(path);
      if (report.status !== 0) failures.push(`cut ${cut}: qemu-img check exits ${report.status}\n${report.output}`);
      const compare = await runAsync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', path, raw]);
      if (compare.status !== 0) failures.push(`cut ${cut}: qemu-img compare exits ${compare.status}: ${compare.stdout.trim()} ${compare.stderr.trim()}`);
      qemuChecked++;
    });
  } finally {
    dir.cleanup();
  }
  return { ops: recording.opCount, cuts: cuts.length, images, untouched, notImages: images - whole.length - untouched, whole: whole.length, qemuRefusals, qemuChecked, failures };
}

/**
 * Crash points: every one of a short log; of a long one, the first and last 40 (the truncation's sync, and
 * refcounts, L1 table, header and their syncs), around every flush, and one in 7 elsewhere.
 */
function crashCuts(recording: RecordingBlockFile): number[] {
  const count = recording.opCount;
  if (count <= 400) return Array.from({ length: count + 1 }, (_, i) => i);
  const cuts = new Set<number>();
  for (let cut = 0; cut <= count; cut++) if (cut <= 40 || cut >= count - 40 || cut % 7 === 0) cuts.add(cut);
  for (const index of recording.flushIndexes()) for (let cut = index - 2; cut <= index + 2; cut++) if (cut >= 0 && cut <= count) cuts.add(cut);
  return [...cuts].sort((a, b) => a - b);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Undefined when the engine refuses the file with a typed error (as it must a file without the magic). */
async function engineRefusal(bytes: Uint8Array): Promise<string | undefined> {
  try {
    const image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs() });
    await image.close();
    return 'the engine opened it';
  } catch (error) {
    return isDiskError(error) ? undefined : `the engine failed without a DiskError: ${String(error)}`;
  }
}

/** Undefined when the image reads exactly `guest` (in-process; qemu-img checks a sample afterwards). */
async function wholeImageProblem(bytes: Uint8Array, guest: Uint8Array): Promise<string | undefined> {
  let image: Qcow2Image;
  try {
    image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs() });
  } catch (error) {
    return `it does not open: ${(error as Error).message}`;
  }
  try {
    if (image.size !== guest.length) return `its size is ${image.size}, not ${guest.length}`;
    const back = new Uint8Array(guest.length);
    await image.read(back, 0);
    for (let i = 0; i < guest.length; i++) if (back[i] !== guest[i]) return `guest byte ${i} reads 0x${back[i]!.toString(16)}, not 0x${guest[i]!.toString(16)}`;
    return undefined;
  } catch (error) {
    return `reading it fails: ${(error as Error).message}`;
  } finally {
    await image.close();
  }
}

