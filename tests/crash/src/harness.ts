import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Qcow2Image } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { MemoryBlockFile, RawDisk, RecordingBlockFile, type CrashPolicy, type CrashState } from '@q/raw';
import { Rng, scratch, type Scratch } from '@q/test-support';
import { bitmapAnswers, checkBitmaps, type BitmapAnswers } from './bitmap-check.js';
import { compressedCluster } from './compressed-streams.js';
import { describeOp, firstMismatch, isBarrier, SECTOR, SectorModel, type GuestOp } from './guest-model.js';
import { qemuCheck, qemuCheckHuman, runAsync, runPool } from './qemu-check.js';

/** The image before the workload: its bytes, what the guest reads, and what each internal snapshot reads. */
export interface BaseImage {
  bytes: Uint8Array;
  model: SectorModel;
  snapshots?: Array<{ name: string; model: SectorModel }>;
}

export interface Scenario {
  name: string;
  base: BaseImage;
  workload: GuestOp[];
  /** The image has lazy_refcounts=on: refcounts may be stale after a crash while the dirty bit is set. */
  lazy?: boolean;
  /** Crash points: every one when the log has at most this many ops (default 1500), else a dense sample. */
  allPointsUpTo?: number;
  /** For sampled logs: one crash point in this many away from flushes and structural windows (default 7). */
  stride?: number;
  /** Guest op indexes whose every crash point is checked, however long the log. */
  densePoints?: number[];
  policies?: CrashPolicy[];
  /** Cross-check the guest bytes with QEMU's own reader (qemu-img convert) at about this many points (default 40). */
  qemuReads?: number;
  /** Most crash images to check (default DEFAULT_MAX_CHECKS); past it, boundJobs keeps the structural ones first. */
  maxChecks?: number;
  /** Bytes of L2 tables the recorded session caches: small caches write tables back between flushes (evictions). */
  l2CacheBytes?: number;
  /** Enabled persistent bitmaps of the base the session maintains: each crash image is held to bitmap-check.ts. */
  bitmaps?: string[];
  /** The base names a backing file: the session opens it as this many bytes of zeros (as the model reads them). */
  backingSize?: number;
}

export const DEFAULT_POLICIES: CrashPolicy[] = [
  { kind: 'drop-all' },
  { kind: 'keep-all' },
  { kind: 'subset', seed: 11 },
  { kind: 'subset', seed: 12, keep: 0.25 },
  { kind: 'reorder', seed: 13 },
  { kind: 'reorder', seed: 14, keep: 0.8 },
];

/** Where each guest op's file operations lie in the log: [start, end). */
export interface OpSpan {
  op: GuestOp;
  start: number;
  end: number;
}

export interface Recording {
  file: RecordingBlockFile;
  spans: OpSpan[];
}

export interface CrashFailure {
  scenario: string;
  cut: number;
  policy: string;
  /** The guest op running (or last finished) at the crash. */
  during: string;
  detail: string;
  /** Where the crashed image was kept for inspection. */
  image: string;
}

export interface ScenarioResult {
  ops: number;
  flushes: number;
  /** Deallocations (punched holes) in the log. */
  deallocations: number;
  crashPoints: number;
  /** Crash images the points and policies give, before boundJobs. */
  candidates: number;
  checks: number;
  qemuReads: number;
  failures: CrashFailure[];
  /** The image as the uninterrupted run left it. */
  final: Uint8Array;
}

/** Runs the workload on the base image through a recording file, as one uninterrupted session. */
export async function record(scenario: Scenario): Promise<Recording> {
  // The file deallocates as a file system with holes does, so freed clusters are punched (recorded as zeros over
  // the range, pending until a flush) and every crash point also covers holes punched too early.
  const file = await RecordingBlockFile.wrap(new MemoryBlockFile(scenario.base.bytes.slice(), { name: scenario.name, deallocate: true }));
  const { backingSize } = scenario;
  const openBacking = backingSize === undefined ? undefined : async (name: string) => RawDisk.open(new MemoryBlockFile(new Uint8Array(backingSize), { name, writable: false }));
  const image = await Qcow2Image.open(file, { writable: true, codecs: nodeCodecs(), l2CacheBytes: scenario.l2CacheBytes, openBacking });
  const spans: OpSpan[] = [];
  for (const op of scenario.workload) {
    const start = file.opCount;
    switch (op.op) {
      case 'write':
        await image.write(new Uint8Array(op.length).fill(op.pattern), op.offset);
        break;
      case 'compressed':
        for (let at = op.offset, clusterSize = image.metadata.geometry.clusterSize; at < op.offset + op.length; at += clusterSize) {
          await image.writeCompressed(at, compressedCluster(image.compressionType, clusterSize, op.pattern, op.rawBytes));
        }
        break;
      case 'zero':
        await image.writeZeroes(op.offset, op.length, { unmap: op.unmap === true });
        break;
      case 'discard':
        await image.discard(op.offset, op.length);
        break;
      case 'flush':
        await image.flush();
        break;
      case 'resize':
        await image.resize(op.size, { preallocation: op.preallocation });
        break;
      case 'close':
        await image.close();
        break;
      case 'empty':
        await image.makeEmpty();
        break;
      case 'backing':
        await image.setBackingFile(op.name, op.name === undefined ? undefined : 'raw');
        break;
      case 'downgrade':
        await image.amend({ version: 2 });
        break;
      case 'snapshot':
        if (op.action === 'create') await image.createSnapshot(op.name);
        else if (op.action === 'apply') await image.applySnapshot(op.name);
        else await image.deleteSnapshot(op.name);
        break;
    }
    spans.push({ op, start, end: file.opCount });
  }
  if (scenario.workload.at(-1)?.op !== 'close') await image.close();
  return { file, spans };
}

/**
 * The guest state a crash after `cut` log entries must show: everything acknowledged before the last guest flush
 * that completed is definite; ops after it that had begun may or may not show (sector by sector).
 */
export class ModelTimeline {
  private readonly spans: OpSpan[];
  /** State after every op before barrier i (index into spans), for each barrier. */
  private readonly atBarrier = new Map<number, SectorModel>();
  private readonly initial: SectorModel;

  /** For each snapshot apply (by span index): the state it switches the disk to. */
  private readonly applied = new Map<number, SectorModel>();

  constructor(initial: SectorModel, spans: OpSpan[]) {
    this.spans = spans;
    this.initial = initial;
    let state = initial.clone();
    const snapshots = new Map<string, SectorModel>();
    spans.forEach((span, i) => {
      const op = span.op;
      if (op.op === 'snapshot' && op.action === 'create') snapshots.set(op.name, state.clone());
      else if (op.op === 'snapshot' && op.action === 'delete') snapshots.delete(op.name);
      else if (op.op === 'snapshot' && op.action === 'apply') {
        state = snapshots.get(op.name)!.clone();
        this.applied.set(i, state.clone());
      } else state.apply(op);
      if (isBarrier(op)) this.atBarrier.set(i, state.clone());
    });
  }

  /** The last barrier completed within `cut`, or -1. */
  lastBarrier(cut: number): number {
    for (let i = this.spans.length - 1; i >= 0; i--) if (isBarrier(this.spans[i]!.op) && this.spans[i]!.end <= cut) return i;
    return -1;
  }

  expected(cut: number): { model: SectorModel; minSize: number; maxSize: number; barrier: number } {
    const barrier = this.lastBarrier(cut);
    const model = (barrier < 0 ? this.initial : this.atBarrier.get(barrier)!).clone();
    let minSize = model.size;
    let maxSize = model.size;
    for (let i = barrier + 1; i < this.spans.length; i++) {
      const span = this.spans[i]!;
      if (span.start >= cut) break;
      const target = this.applied.get(i);
      if (target !== undefined) {
        // The switch to the snapshot's state may or may not have landed (the size follows the snapshot).
        model.widenTo(target);
        minSize = Math.min(minSize, target.size);
        maxSize = Math.max(maxSize, target.size);
      } else model.widen(span.op);
      if (span.op.op === 'resize') {
        maxSize = Math.max(maxSize, span.op.size);
        minSize = Math.min(minSize, span.op.size);
      }
    }
    return { model, minSize, maxSize, barrier };
  }

  /** The guest op whose file operations include log entry `cut - 1` (what the crash interrupted). */
  describe(cut: number): string {
    if (cut === 0) return 'before the first op';
    const index = this.spans.findIndex((span) => span.start < cut && cut <= span.end);
    if (index < 0) return `after op ${this.spans.length - 1}`;
    const span = this.spans[index]!;
    return `op ${index} (${describeOp(span.op)}), its file op ${cut - span.start} of ${span.end - span.start}`;
  }
}

/**
 * Crash points to check: all of them for short logs; else flush neighbourhoods, structural windows and a sample.
 * `structural` holds the points next to flushes, header writes (table switches, state bits) and punched holes:
 * where ordering bugs show, so they are the last to go when the work is bounded (boundJobs).
 */
export function crashPoints(scenario: Scenario, recording: Recording): { points: number[]; structural: Set<number> } {
  const { file, spans } = recording;
  const count = file.opCount;
  const structural = new Set<number>([0, count]);
  const add = (from: number, to: number, into: Set<number>): void => {
    for (let cut = Math.max(0, from); cut <= Math.min(count, to); cut++) into.add(cut);
  };
  file.ops.forEach((op) => {
    // Around every completed flush: just before it, as it completes, and the first ops after it.
    if (op.kind === 'flush') add(op.index - 1, op.index + 3, structural);
    // Header writes mark table switches (refcount table, L1 table) and state bits: every point around them.
    if (op.kind === 'write' && op.offset < 512) add(op.index - 40, op.index + 40, structural);
    // Punched holes: just before and after each (a hole punched too early shows right after it).
    if (op.kind === 'deallocate') add(op.index, op.index + 2, structural);
  });
  for (const index of scenario.densePoints ?? []) add(spans[index]!.start, spans[index]!.end + 20, structural);
  if (count <= (scenario.allPointsUpTo ?? 1500)) return { points: Array.from({ length: count + 1 }, (_, i) => i), structural };
  const points = new Set(structural);
  const stride = scenario.stride ?? 7;
  for (let cut = 0; cut <= count; cut += stride) points.add(cut);
  return { points: [...points].sort((a, b) => a - b), structural };
}

/**
 * Most crash images one scenario checks (each is a materialized image, a qemu-img check and a read of the guest):
 * bounds a test's work on a busy machine. Measured with `stress -c 2` beside the whole suite: 0.1-0.35 s per check
 * for small images, about 1 s for the 8-16 MiB images of the table-growth scenarios (which set a lower bound).
 */
export const DEFAULT_MAX_CHECKS = 800;

/**
 * At most `max` of `jobs`: every structural one while they fit, the rest an evenly spaced sample (deterministic,
 * so a failure reproduces). Spacing keeps the sample spread over the whole log rather than its start.
 */
export function boundJobs<T extends { cut: number }>(jobs: T[], structural: Set<number>, max: number): T[] {
  if (jobs.length <= max) return jobs;
  const first = jobs.filter((job) => structural.has(job.cut));
  const rest = jobs.filter((job) => !structural.has(job.cut));
  if (first.length >= max) return evenly(first, max);
  return [...first, ...evenly(rest, max - first.length)].sort((a, b) => a.cut - b.cut);
}

function evenly<T>(items: T[], count: number): T[] {
  if (count <= 0) return [];
  if (items.length <= count) return items;
  const step = items.length / count;
  return Array.from({ length: count }, (_, i) => items[Math.floor(i * step)]!);
}

function policyName(policy: CrashPolicy): string {
  switch (policy.kind) {
    case 'subset':
    case 'reorder':
      return `${policy.kind}(seed ${policy.seed}, keep ${policy.keep ?? 0.5})`;
    case 'explicit':
      return `explicit(${policy.order.join(',')})`;
    default:
      return policy.kind;
  }
}

/** Records the scenario, then replays every selected crash point under every policy and checks each result. */
export async function runCrashScenario(scenario: Scenario): Promise<ScenarioResult> {
  const recording = await record(scenario);
  const timeline = new ModelTimeline(scenario.base.model, recording.spans);
  const { points, structural } = crashPoints(scenario, recording);
  const policies = scenario.policies ?? DEFAULT_POLICIES;
  const dir: Scratch = scratch(`qcow-crash-${scenario.name.replace(/[^a-z0-9]+/gi, '-')}-`);
  const failures: CrashFailure[] = [];
  const candidates: Array<{ cut: number; policy: CrashPolicy }> = [];
  for (const [n, cut] of points.entries()) {
    // Working out each crash image is synchronous and adds up to minutes on a busy machine: give the event loop a
    // turn now and then, or vitest's worker cannot report and fails with "Timeout calling onTaskUpdate".
    if (n % 8 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const { pending } = recording.file.classify(cut);
    const seen = new Set<string>();
    for (const policy of policies) {
      // Policies that keep the same ops make the same image: check it once.
      const key = pending.length === 0 ? '' : recording.file.crash(cut, policy).applied.join(',');
      if (seen.has(key)) continue;
      seen.add(key);
      candidates.push({ cut, policy });
    }
  }
  const jobs = boundJobs(candidates, structural, scenario.maxChecks ?? DEFAULT_MAX_CHECKS);
  const qemuReadEvery = Math.max(1, Math.floor(jobs.length / (scenario.qemuReads ?? 40)));
  let qemuReads = 0;
  const final = recording.file.materialize(recording.file.opCount, { kind: 'keep-all' });
  const bitmaps = scenario.bitmaps === undefined ? undefined : await bitmapAnswers(scenario.bitmaps, scenario.base.bytes, final);
  await runPool(jobs, 3, async ({ cut, policy }, index, worker) => {
    const state = recording.file.crash(cut, policy);
    const path = dir.path(`crash-${worker}.qcow2`);
    const problems = await checkCrashImage(scenario, state, timeline, path, index % qemuReadEvery === 0, bitmaps);
    if (index % qemuReadEvery === 0) qemuReads++;
    if (problems.length > 0) {
      const kept = keepFailure(scenario.name, cut, policy, state.bytes);
      failures.push({
        scenario: scenario.name,
        cut,
        policy: `${policyName(policy)}; last completed flush at log op ${state.lastFlush}; durable ${state.durable.length} ops; pending [${abbreviate(state.pending)}]; kept [${abbreviate(state.applied)}]`,
        during: timeline.describe(cut),
        detail: problems.join('\n'),
        image: kept,
      });
    }
  });
  dir.cleanup();
  return {
    ops: recording.file.opCount,
    flushes: recording.file.flushIndexes().length,
    deallocations: recording.file.ops.filter((op) => op.kind === 'deallocate').length,
    crashPoints: points.length,
    candidates: candidates.length,
    checks: jobs.length,
    qemuReads,
    failures: failures.sort((a, b) => a.cut - b.cut),
    final,
  };
}

/**
 * The checks at one crash point: `qemu-img check` finds no corruption (leaks are fine; with lazy refcounts stale
 * refcounts are fine while the dirty bit is set, and `check -r all` must make the image clean), and the guest
 * reads back everything acknowledged before the last completed flush.
 */
async function checkCrashImage(
  scenario: Scenario,
  state: CrashState,
  timeline: ModelTimeline,
  path: string,
  qemuRead: boolean,
  bitmaps: BitmapAnswers | undefined,
): Promise<string[]> {
  const problems: string[] = [];
  writeFileSync(path, state.bytes);
  const header = new DataView(state.bytes.buffer, state.bytes.byteOffset);
  // A v2 header ends at byte 72 (its extensions follow): the feature bits exist from v3 on.
  const incompatible = state.bytes.length >= 80 && header.getUint32(4) >= 3 ? header.getUint32(76) : 0;
  const dirty = (incompatible & 1) !== 0;
  const corruptBit = (incompatible & 2) !== 0;
  if (corruptBit) problems.push('the corrupt bit is set in the header');
  let readPath = path;
  const report = await qemuCheck(path);
  const clean = (report.status === 0 || report.status === 3) && report.corruptions === 0 && report.checkErrors === 0;
  if (scenario.lazy !== true) {
    if (!clean) problems.push(`qemu-img check: exit ${report.status}\n${report.output}`);
    if (dirty) problems.push('the dirty bit is set on an image without lazy refcounts');
  } else {
    if (!clean) {
      if (!dirty) problems.push(`qemu-img check found errors but the dirty bit is clear: exit ${report.status}\n${report.output}`);
      const human = await qemuCheckHuman(path);
      const structural = human.stdout
        .split('\n')
        .concat(human.stderr.split('\n'))
        .filter((line) => /^(ERROR|Warning)/.test(line) && !LAZY_TOLERATED.some((pattern) => pattern.test(line)));
      if (structural.length > 0) problems.push(`qemu-img check reports damage beyond stale refcounts:\n${structural.slice(0, 10).join('\n')}`);
    }
    if (dirty || !clean) {
      readPath = path.replace(/\.qcow2$/, '-repaired.qcow2');
      writeFileSync(readPath, state.bytes);
      const repair = await runAsync('qemu-img', ['check', '-r', 'all', readPath]);
      if (repair.status !== 0) problems.push(`qemu-img check -r all leaves the image unclean: exit ${repair.status}\n${repair.stdout}${repair.stderr}`);
      const after = await qemuCheck(readPath);
      if (after.status !== 0) problems.push(`after qemu-img check -r all, qemu-img check exits ${after.status}\n${after.output}`);
    }
  }
  if (problems.length > 0 && report.status === 1) return problems;
  const expected = timeline.expected(state.cut);
  const bytes = readPath === path ? state.bytes : new Uint8Array(readFileSync(readPath));
  let size = 0;
  try {
    const read = await verifyGuest(bytes, expected, scenario.base.snapshots ?? []);
    size = read.size;
    problems.push(...read.problems);
  } catch (error) {
    problems.push(`reading the crashed image failed: ${(error as Error).message}`);
  }
  if (qemuRead && problems.length === 0) problems.push(...(await verifyWithQemu(readPath, expected, size)));
  if (bitmaps !== undefined) problems.push(...(await checkBitmaps(state.bytes, bitmaps)));
  return problems;
}

/** With lazy refcounts, a crash may leave refcounts (and hence COPIED flags) stale; nothing else. */
const LAZY_TOLERATED = [
  /^ERROR cluster \d+ refcount=\d+ reference=\d+$/,
  /^ERROR OFLAG_COPIED data cluster: l2_entry=[0-9a-f]+ refcount=\d+$/,
  /^ERROR OFLAG_COPIED L2 cluster: l1_index=\d+ l1_entry=[0-9a-f]+ refcount=\d+$/,
];

/** Reads the crashed image in-process (read-only) and compares it with the model. */
async function verifyGuest(
  bytes: Uint8Array,
  expected: { model: SectorModel; minSize: number; maxSize: number },
  snapshots: Array<{ name: string; model: SectorModel }>,
): Promise<{ problems: string[]; size: number }> {
  const problems: string[] = [];
  // A backing file named by a rebase scenario reads as zeros (the model's unwritten sectors): not opened here.
  const image = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs(), ignoreBacking: true });
  const size = image.size;
  try {
    if (image.size < expected.minSize || image.size > expected.maxSize) {
      problems.push(`virtual size is ${image.size}, expected ${expected.minSize}..${expected.maxSize}`);
    }
    const mismatch = await compareDevice(image, expected.model);
    if (mismatch !== undefined) problems.push(mismatch);
  } finally {
    await image.close();
  }
  for (const snapshot of snapshots) {
    const view = await Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs(), snapshot: snapshot.name, ignoreBacking: true });
    try {
      const mismatch = await compareDevice(view, snapshot.model);
      if (mismatch !== undefined) problems.push(`snapshot ${snapshot.name}: ${mismatch}`);
    } finally {
      await view.close();
    }
  }
  return { problems, size };
}

/**
 * Compares a device with the model: allocated ranges are read and checked byte by byte; ranges that read as zeros
 * without data (zero flag, unallocated) only need every modelled sector in them to allow zero.
 */
async function compareDevice(image: Qcow2Image, model: SectorModel): Promise<string | undefined> {
  const sorted = model.sortedSectors();
  for (const extent of await image.map(0, image.size)) {
    if (extent.kind === 'data' || extent.kind === 'compressed') {
      for (let at = 0; at < extent.length; at += 1 << 22) {
        const chunk = new Uint8Array(Math.min(1 << 22, extent.length - at));
        await image.read(chunk, extent.guestOffset + at);
        const mismatch = firstMismatch(model, chunk, extent.guestOffset + at);
        if (mismatch !== undefined) return `${mismatch} (${extent.kind} extent)`;
      }
      continue;
    }
    const first = Math.ceil(extent.guestOffset / SECTOR);
    const end = (extent.guestOffset + extent.length) / SECTOR;
    for (let i = lowerBound(sorted, first); i < sorted.length && sorted[i]! < end; i++) {
      const allowed = model.allowed(sorted[i]!);
      if (!allowed.includes(0)) return `guest sector ${sorted[i]} reads as zeros (${extent.kind}), expected 0x${allowed[0]!.toString(16)}`;
    }
  }
  // Modelled sectors past the end of the disk (a resize that did not happen) must not hold anything definite.
  for (let i = lowerBound(sorted, image.size / SECTOR); i < sorted.length; i++) {
    if (!model.allowed(sorted[i]!).includes(0)) return `guest sector ${sorted[i]} lies past the end of the disk (${image.size} bytes) but holds acknowledged data`;
  }
  return undefined;
}

/**
 * QEMU's own reader as a second opinion: the guest bytes through `qemu-img convert -O raw`, the whole disk when it
 * is small, else the ranges the model names (through a raw layer with offset and size over the qcow2 image).
 */
async function verifyWithQemu(path: string, expected: { model: SectorModel; minSize: number }, size: number): Promise<string[]> {
  const raw = path.replace(/\.qcow2$/, '.raw');
  const ranges: Array<[number, number]> = [];
  if (size <= 64 * 1024 * 1024) {
    ranges.push([0, size]);
  } else {
    const MiB = 1024 * 1024;
    for (const sector of expected.model.sortedSectors()) {
      const start = Math.floor((sector * SECTOR) / MiB) * MiB;
      if (start >= size) break;
      const last = ranges.at(-1);
      if (last !== undefined && start <= last[1]) last[1] = Math.min(size, Math.max(last[1], start + MiB));
      else ranges.push([start, Math.min(size, start + MiB)]);
    }
  }
  for (const [offset, end] of ranges) {
    const source =
      offset === 0 && end === size
        ? ['-f', 'qcow2', path]
        : [`json:${JSON.stringify({ driver: 'raw', offset, size: end - offset, file: { driver: 'qcow2', file: { driver: 'file', filename: path } } })}`];
    const result = await runAsync('qemu-img', ['convert', ...source, '-O', 'raw', raw]);
    if (result.status !== 0) return [`qemu-img convert failed: ${result.stderr.trim()}`];
    const bytes = new Uint8Array(readFileSync(raw));
    if (bytes.length !== end - offset) return [`qemu-img convert gave ${bytes.length} bytes for a range of ${end - offset}`];
    const mismatch = firstMismatch(expected.model, bytes, offset);
    if (mismatch !== undefined) return [`QEMU reads: ${mismatch}`];
  }
  return [];
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const failureDir = join(process.env['QCOW_TEST_TMP'] ?? '/dev/shm', 'qcow-crash-failures');

/** Keeps a failing crash image for inspection (the first few per scenario). */
function keepFailure(scenario: string, cut: number, policy: CrashPolicy, bytes: Uint8Array): string {
  mkdirSync(failureDir, { recursive: true });
  const path = join(failureDir, `${scenario.replace(/[^a-z0-9]+/gi, '-')}-cut${cut}-${policy.kind}${'seed' in policy ? policy.seed : ''}.qcow2`);
  writeFileSync(path, bytes);
  return path;
}

function abbreviate(list: readonly number[]): string {
  return list.length <= 12 ? list.join(',') : `${list.slice(0, 6).join(',')},... (${list.length} ops) ...,${list.slice(-4).join(',')}`;
}

/** A summary of failures for an assertion message: the first few in full. */
export function formatFailures(failures: CrashFailure[], limit = 5): string {
  return failures
    .slice(0, limit)
    .map((f) => `[${f.scenario}] crash after ${f.cut} log ops, during ${f.during}\n  policy: ${f.policy}\n  image kept at ${f.image}\n  ${f.detail.replace(/\n/g, '\n  ')}`)
    .join('\n\n')
    .concat(failures.length > limit ? `\n\n... and ${failures.length - limit} more` : '');
}

/** The workloads' deterministic generator: test-support's mulberry32, as a number in [0, 1). */
export function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next() / 4294967296;
}

/** Header fields the growth tests look at. */
export function headerFields(bytes: Uint8Array): { l1Size: number; l1Offset: number; refcountTableOffset: number; refcountTableClusters: number; size: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number): number => view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
  return { size: u64(24), l1Size: view.getUint32(36), l1Offset: u64(40), refcountTableOffset: u64(48), refcountTableClusters: view.getUint32(56) };
}

/** Runs a scenario, logs what it covered, and fails with the first crash points that broke the contract. */
export async function expectCrashConsistent(scenario: Scenario): Promise<ScenarioResult> {
  const started = Date.now();
  const result = await runCrashScenario(scenario);
  console.log(
    `${scenario.name}: ${result.ops} file ops (${result.flushes} flushes, ${result.deallocations} holes punched), ${result.crashPoints} crash points, ` +
      `${result.checks} crash images checked (of ${result.candidates}), ${result.qemuReads} also read by QEMU, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (result.failures.length > 0) throw new Error(`${result.failures.length} crash images broke the contract:\n\n${formatFailures(result.failures)}`);
  return result;
}
