#!/usr/bin/env node
// Benchmark: `qcow convert -O raw` against `qemu-img convert -O raw` on the same images, same machine, same run.
// Reports median wall time, their ratio and peak RSS per image, checked against the acceptance target
// (wall time at most 1.25x qemu-img's, peak RSS under 200 MiB). A report, not a test: a missed target exits 0.
// See README.md in this directory.
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const MiB = 2 ** 20;
/** Pause before each timed run (see settle). */
const SETTLE_MS = 2000;
const GiB = 2 ** 30;
const TARGET_RATIO = 1.25;
const TARGET_RSS_MIB = 200;
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

const USAGE = `Usage: node tools/bench/convert-bench.mjs [options]   (or: pnpm bench [options])

  --runs N          timed runs per tool and image, alternating tools (default 5)
  --only NAMES      comma-separated image names or prefixes: ${'alloc-1g, ext4-plain, ext4-zlib, ext4-zstd'}
  --fresh           rebuild the test images even if cached ones exist
  --keep            leave the work directory (test images) in place for the next run; default: delete it at exit
  --source-dir DIR  directory copied into the ext4 image by mke2fs -d (default /usr/lib/x86_64-linux-gnu,
                    falling back to /usr/share, then /usr)
  --qcow PATH       qcow CLI to measure (default packages/cli/bin/qcow.cjs; .js/.mjs/.cjs files run with node)
  --qemu-img PATH   qemu-img to compare with (default qemu-img on PATH)
  --work-dir DIR    where images and outputs live (default /dev/shm/qcow-bench; should be a RAM disk)
  --json FILE       also write the results as JSON to FILE ('-': JSON on stdout, table on stderr)
  -h, --help        this text`;

// ---------------------------------------------------------------------------------------------------------- options

function parseOptions(argv) {
  const options = {
    runs: 5,
    only: undefined,
    fresh: false,
    keep: false,
    sourceDir: undefined,
    qcow: path.join(repoRoot, 'packages/cli/bin/qcow.cjs'),
    qemuImg: 'qemu-img',
    workDir: '/dev/shm/qcow-bench',
    json: undefined,
  };
  const args = [...argv];
  if (args[0] === '--') args.shift(); // `pnpm bench -- --runs 3`
  const value = (name) => {
    const next = args.shift();
    if (next === undefined) usageError(`${name} needs a value`);
    return next;
  };
  while (args.length > 0) {
    let arg = args.shift();
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq > 0) {
      args.unshift(arg.slice(eq + 1));
      arg = arg.slice(0, eq);
    }
    switch (arg) {
      case '--runs': {
        const text = value(arg);
        options.runs = Number(text);
        if (!Number.isInteger(options.runs) || options.runs < 1) usageError(`--runs: not a positive integer: ${text}`);
        break;
      }
      case '--only':
        options.only = value(arg).split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--fresh':
        options.fresh = true;
        break;
      case '--keep':
        options.keep = true;
        break;
      case '--source-dir':
        options.sourceDir = path.resolve(value(arg));
        break;
      case '--qcow':
        options.qcow = path.resolve(value(arg));
        break;
      case '--qemu-img':
        options.qemuImg = value(arg);
        break;
      case '--work-dir':
        options.workDir = path.resolve(value(arg));
        break;
      case '--json':
        options.json = value(arg);
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        usageError(`unknown argument: ${arg}`);
    }
  }
  return options;
}

function usageError(message) {
  process.stderr.write(`convert-bench: ${message}\n\n${USAGE}\n`);
  process.exit(64);
}

class BenchError extends Error {}

// ---------------------------------------------------------------------------------------------------------- helpers

const log = (message) => process.stderr.write(`${message}\n`);

/** Runs a command to completion; throws with its stderr when it fails. */
function run(command, args, { quiet = true } = {}) {
  const result = spawnSync(command, args, { stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'pipe'], maxBuffer: 64 * MiB });
  if (result.error) throw new BenchError(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const stderr = result.stderr?.toString().trim();
    throw new BenchError(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}${stderr ? `:\n${stderr}` : ''}`);
  }
  return result.stdout?.toString() ?? '';
}

function haveCommand(command) {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null`, 'sh', command]).status === 0;
}

function fileSize(file) {
  return fs.statSync(file).size;
}

function allocatedBytes(file) {
  return fs.statSync(file).blocks * 512;
}

/** Machine-wide busy CPU seconds so far (/proc/stat: everything but idle and iowait), or undefined off Linux. */
function busyCpuSeconds() {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function humanSize(bytes) {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

/** Writes `file` atomically: `make(tmp)` builds it beside, then it is renamed into place. */
function buildFile(file, make) {
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true });
  try {
    make(tmp);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------- setup

const IMAGES = [
  { name: 'alloc-1g', description: '1 GiB fully allocated (random data), plain qcow2', base: 'random', qemuArgs: [] },
  { name: 'ext4-plain', description: '2 GiB ext4 (mke2fs -d), plain qcow2', base: 'ext4', qemuArgs: [] },
  { name: 'ext4-zlib', description: '2 GiB ext4 (mke2fs -d), zlib-compressed qcow2', base: 'ext4', qemuArgs: ['-c'] },
  {
    name: 'ext4-zstd',
    description: '2 GiB ext4 (mke2fs -d), zstd-compressed qcow2',
    base: 'ext4',
    qemuArgs: ['-c', '-o', 'compression_type=zstd'],
  },
];

function pickSourceDir(requested) {
  if (requested !== undefined) {
    if (!fs.statSync(requested, { throwIfNoEntry: false })?.isDirectory()) throw new BenchError(`--source-dir ${requested}: not a directory`);
    return requested;
  }
  for (const candidate of ['/usr/lib/x86_64-linux-gnu', '/usr/share', '/usr']) {
    if (fs.statSync(candidate, { throwIfNoEntry: false })?.isDirectory()) return candidate;
  }
  throw new BenchError('no source directory for the ext4 image; pass --source-dir');
}

/** A raw file of `size` pseudo-random bytes (no all-zero 4 KiB block, so every cluster is allocated). */
function writeRandomRaw(file, size) {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.allocUnsafe(16 * MiB);
    for (let at = 0; at < size; at += chunk.length) {
      const bytes = chunk.subarray(0, Math.min(chunk.length, size - at));
      randomFillSync(bytes);
      fs.writeSync(fd, bytes, 0, bytes.length, at);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes (or reuses) the qcow2 images in the work directory. A manifest records what they were built from, so a
 * different --source-dir rebuilds them. Intermediate raw files are deleted once the qcow2 images exist.
 */
function setUp(options, images) {
  const dir = options.workDir;
  fs.mkdirSync(dir, { recursive: true });
  const manifestFile = path.join(dir, 'manifest.json');
  const sourceDir = images.some((image) => image.base === 'ext4') ? pickSourceDir(options.sourceDir) : undefined;
  let manifest = {};
  if (options.fresh) {
    for (const image of IMAGES) fs.rmSync(path.join(dir, `${image.name}.qcow2`), { force: true });
  } else {
    try {
      manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    } catch {
      manifest = {};
    }
  }
  const save = () => fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);

  const bases = {
    random: {
      key: 'random 1GiB',
      file: path.join(dir, 'random.raw'),
      make(tmp) {
        log(`setup: writing 1 GiB of pseudo-random data`);
        writeRandomRaw(tmp, GiB);
      },
    },
    ext4: {
      key: `ext4 2G -d ${sourceDir}`,
      file: path.join(dir, 'fs.raw'),
      make(tmp) {
        log(`setup: mke2fs -q -t ext4 -d ${sourceDir} (2 GiB)`);
        run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', sourceDir, tmp, '2G']);
      },
    },
  };

  for (const image of images) {
    image.file = path.join(dir, `${image.name}.qcow2`);
    const base = bases[image.base];
    const key = `${base.key}; qemu-img convert ${image.qemuArgs.join(' ')}`.trim();
    if (manifest[image.name] === key && fs.existsSync(image.file)) {
      log(`setup: ${image.name}: cached (${image.file})`);
      continue;
    }
    if (!fs.existsSync(base.file)) buildFile(base.file, base.make);
    log(`setup: ${image.name}: qemu-img convert ${[...image.qemuArgs, '-O', 'qcow2'].join(' ')}`);
    buildFile(image.file, (tmp) => run(options.qemuImg, ['convert', '-f', 'raw', ...image.qemuArgs, '-O', 'qcow2', base.file, tmp]));
    manifest[image.name] = key;
    save();
  }
  for (const base of Object.values(bases)) fs.rmSync(base.file, { force: true });
  return { sourceDir };
}

// ---------------------------------------------------------------------------------------------------------- measuring

/**
 * One timed conversion under /usr/bin/time: wall time from this process (monotonic, sub-millisecond), peak RSS and
 * CPU time from GNU time (the child's wait4 rusage). The output file is deleted first, so every run creates it,
 * and the disk is synced (untimed): on ext4 the run before left a GiB of dirty pages whose writeback otherwise
 * overlaps this run, and whichever tool came second in a pair took 1-3 s instead of 0.4 (both tools alike).
 */
function timedConvert(tool, image, output, timeFile) {
  fs.rmSync(output, { force: true });
  fs.rmSync(timeFile, { force: true });
  spawnSync('sync', []);
  settle();
  const args = ['-o', timeFile, '-f', '%e %M %U %S', ...tool.command, 'convert', '-O', 'raw', image, output];
  const start = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * MiB });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.error) throw new BenchError(`/usr/bin/time: ${result.error.message}`);
  if (result.status !== 0) {
    throw new BenchError(`${tool.name} convert -O raw ${image} failed (exit ${result.status ?? result.signal}):\n${result.stderr.toString().trim()}`);
  }
  // GNU time may prefix "Command exited with non-zero status"; the format line is the last one.
  const line = fs.readFileSync(timeFile, 'utf8').trim().split('\n').at(-1);
  const [, maxRssKiB, user, system] = line.split(/\s+/).map(Number);
  if (![maxRssKiB, user, system].every(Number.isFinite)) throw new BenchError(`cannot parse /usr/bin/time output: ${line}`);
  return { wall, rssMiB: maxRssKiB / 1024, cpu: user + system, user, system };
}

/**
 * Waits out the VM's free page reporting (virtio-balloon hands freed memory back to the host about 2 s after it
 * is freed, and a process faulting memory in meanwhile pays for it): deleting the last output freed a GiB, and
 * without the wait the tool running right after took up to 3 s where the other took 0.4.
 */
function settle() {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS);
}

/** Median wall time of `info IMAGE`: the fixed cost of starting each tool, which every conversion pays too. */
function startupCost(tool, image, runs) {
  const walls = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(tool.command[0], [...tool.command.slice(1), 'info', image], { stdio: 'ignore' });
    walls.push(Number(process.hrtime.bigint() - start) / 1e9);
    if (result.status !== 0) throw new BenchError(`${tool.name} info ${image} failed (exit ${result.status ?? result.signal})`);
  }
  return median(walls);
}

function sameBytes(a, b) {
  const result = spawnSync('cmp', ['-s', a, b]);
  if (result.status === 0) return true;
  if (result.status === 1) return false;
  throw new BenchError(`cmp ${a} ${b} failed: ${result.stderr?.toString().trim() || result.error?.message || result.status}`);
}

function measure(options, image, tools) {
  const outputs = Object.fromEntries(tools.map((tool) => [tool.key, path.join(options.workDir, `${image.name}.${tool.key}.raw`)]));
  const timeFile = path.join(options.workDir, 'time.txt');
  const samples = Object.fromEntries(tools.map((tool) => [tool.key, []]));
  try {
    for (let i = 0; i < options.runs; i++) {
      // Alternate which tool goes first, so a slow patch on the machine doesn't always land on the same one.
      const order = i % 2 === 0 ? tools : [...tools].reverse();
      const line = [];
      for (const tool of order) {
        const sample = timedConvert(tool, image.file, outputs[tool.key], timeFile);
        samples[tool.key].push(sample);
        line.push(`${tool.name} ${sample.wall.toFixed(2)}s ${sample.rssMiB.toFixed(0)}MiB`);
      }
      log(`  ${image.name} run ${i + 1}/${options.runs}: ${line.join(', ')}`);
    }
    // Outside the timed runs: the last outputs of both tools must hold the same bytes.
    const identical = sameBytes(outputs.qemu, outputs.qcow);
    const allocated = Object.fromEntries(tools.map((tool) => [tool.key, allocatedBytes(outputs[tool.key])]));
    return { samples, identical, allocated, outputSize: fileSize(outputs.qemu) };
  } finally {
    fs.rmSync(timeFile, { force: true });
    for (const output of Object.values(outputs)) fs.rmSync(output, { force: true });
  }
}

function summarize(image, measured) {
  const { samples } = measured;
  const stat = (key) => ({
    medianWall: median(samples[key].map((s) => s.wall)),
    minWall: Math.min(...samples[key].map((s) => s.wall)),
    maxWall: Math.max(...samples[key].map((s) => s.wall)),
    medianCpu: median(samples[key].map((s) => s.cpu)),
    peakRssMiB: Math.max(...samples[key].map((s) => s.rssMiB)),
    runs: samples[key].map((s) => ({ wall: round(s.wall, 3), user: s.user, system: s.system, rssMiB: round(s.rssMiB, 1) })),
  });
  const qemu = stat('qemu');
  const qcow = stat('qcow');
  const ratio = qcow.medianWall / qemu.medianWall;
  const pairedRatio = median(samples.qcow.map((s, i) => s.wall / samples.qemu[i].wall));
  const cpuRatio = qcow.medianCpu / qemu.medianCpu;
  const timeOk = ratio <= TARGET_RATIO;
  const memoryOk = qcow.peakRssMiB < TARGET_RSS_MIB;
  return {
    image: image.name,
    description: image.description,
    file: image.file,
    sizeOnDisk: fileSize(image.file),
    outputSize: measured.outputSize,
    outputAllocated: measured.allocated,
    identical: measured.identical,
    qemu,
    qcow,
    ratio,
    pairedRatio,
    cpuRatio,
    timeOk,
    memoryOk,
    pass: timeOk && memoryOk && measured.identical,
  };
}

const round = (x, digits) => Number(x.toFixed(digits));

// ---------------------------------------------------------------------------------------------------------- report

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const pad = (cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]));
  const line = (cells) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

function report(results, context) {
  const verdict = (r) => {
    if (!r.identical) return 'FAIL (output differs)';
    const misses = [];
    if (!r.timeOk) misses.push(`time > ${TARGET_RATIO}x`);
    if (!r.memoryOk) misses.push(`RSS >= ${TARGET_RSS_MIB} MiB`);
    return misses.length === 0 ? 'PASS' : `FAIL (${misses.join(', ')})`;
  };
  const main = table(
    ['image', 'size on disk', 'qemu-img median s', 'qcow median s', 'ratio', 'qcow peak RSS MiB', 'qemu-img peak RSS MiB', `target (<= ${TARGET_RATIO}x, < ${TARGET_RSS_MIB} MiB)`],
    results.map((r) => [
      r.image,
      humanSize(r.sizeOnDisk),
      r.qemu.medianWall.toFixed(2),
      r.qcow.medianWall.toFixed(2),
      `${r.ratio.toFixed(2)}x`,
      r.qcow.peakRssMiB.toFixed(0),
      r.qemu.peakRssMiB.toFixed(0),
      verdict(r),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
  const detail = table(
    ['image', 'paired ratio (median)', 'qemu-img wall min–max s', 'qcow wall min–max s', 'qemu-img CPU s', 'qcow CPU s', 'CPU ratio', 'output identical', 'other CPU load'],
    results.map((r) => [
      r.image,
      `${r.pairedRatio.toFixed(2)}x`,
      `${r.qemu.minWall.toFixed(2)}–${r.qemu.maxWall.toFixed(2)}`,
      `${r.qcow.minWall.toFixed(2)}–${r.qcow.maxWall.toFixed(2)}`,
      r.qemu.medianCpu.toFixed(2),
      r.qcow.medianCpu.toFixed(2),
      `${r.cpuRatio.toFixed(2)}x`,
      r.identical ? 'yes' : 'NO',
      r.otherCpuCores === undefined ? 'n/a' : `${r.otherCpuCores.toFixed(2)} cores`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r'],
  );
  const passed = results.filter((r) => r.pass).length;
  const notes = [];
  const noisy = results.filter((r) => r.otherCpuCores !== undefined && r.otherCpuCores > 0.25);
  if (noisy.length > 0) {
    notes.push(
      `- Other processes used CPU during the runs (${noisy.map((r) => `${r.image}: ${r.otherCpuCores.toFixed(2)} cores on average`).join(', ')} ` +
        `of ${os.cpus().length}): wall-time ratios are less reliable (under contention a tool with more threads gets a bigger share). ` +
        `Consider re-running on a quieter machine.`,
    );
  }
  for (const r of results) {
    const [a, b] = [r.outputAllocated.qemu, r.outputAllocated.qcow];
    if (Math.abs(a - b) > 0.01 * Math.max(a, b, MiB)) {
      notes.push(`- ${r.image}: outputs differ in allocation (sparseness): qemu-img ${humanSize(a)}, qcow ${humanSize(b)} allocated.`);
    }
  }
  return [
    `## qcow convert -O raw vs qemu-img convert -O raw`,
    '',
    `${context.runs} alternating runs per tool and image, medians; outputs in ${context.workDir}.`,
    `Node ${process.versions.node}, ${context.qemuVersion}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ` +
      `load average at start ${context.loadStart.map((x) => x.toFixed(2)).join(' ')}, at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    main,
    '',
    `Ratio = qcow median wall / qemu-img median wall. Peak RSS = max over runs of /usr/bin/time %M.`,
    '',
    detail,
    '',
    `CPU = user + system time (median); it also grows when other processes contend for memory and the file system, but less than wall time.`,
    `Other CPU load = machine-wide busy CPU time during the image's runs, minus what the conversions and this script used, per second.`,
    `Fixed cost of starting each tool (\`info\` on ${results[0].image}, median wall): ` +
      `qemu-img ${context.startup.qemu.toFixed(3)} s, qcow ${context.startup.qcow.toFixed(3)} s.`,
    ...(notes.length > 0 ? ['', ...notes] : []),
    '',
    `Targets met on ${passed} of ${results.length} image(s).`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------- main

function main() {
  const options = parseOptions(process.argv.slice(2));
  const images = options.only === undefined
    ? IMAGES.map((image) => ({ ...image }))
    : IMAGES.filter((image) => options.only.some((name) => image.name === name || image.name.startsWith(name))).map((image) => ({ ...image }));
  if (images.length === 0) usageError(`--only ${options.only.join(',')}: no such image (have ${IMAGES.map((i) => i.name).join(', ')})`);

  for (const command of ['/usr/bin/time', 'cmp', options.qemuImg, ...(images.some((i) => i.base === 'ext4') ? ['mke2fs'] : [])]) {
    if (!haveCommand(command)) throw new BenchError(`${command} not found`);
  }
  if (!fs.existsSync(options.qcow)) throw new BenchError(`${options.qcow} not found; run \`pnpm build\` first`);
  const qcowCommand = /\.[cm]?js$/.test(options.qcow) ? [process.execPath, options.qcow] : [options.qcow];
  const tools = [
    { key: 'qemu', name: 'qemu-img', command: [options.qemuImg] },
    { key: 'qcow', name: 'qcow', command: qcowCommand },
  ];
  const qemuVersion = run(options.qemuImg, ['--version']).split('\n')[0].trim();
  const loadStart = os.loadavg();

  const createdWorkDir = !fs.existsSync(options.workDir);
  let cleanUp = !options.keep;
  const onSignal = (signal) => {
    if (cleanUp) fs.rmSync(options.workDir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { sourceDir } = setUp(options, images);
    const startup = Object.fromEntries(tools.map((tool) => [tool.key, startupCost(tool, images[0].file, options.runs)]));
    const results = [];
    for (const image of images) {
      log(`measuring ${image.name} (${humanSize(fileSize(image.file))}): ${options.runs} runs per tool`);
      const loadBefore = os.loadavg()[0];
      const busyBefore = busyCpuSeconds();
      const ownBefore = process.cpuUsage();
      const startedAt = process.hrtime.bigint();
      const result = summarize(image, measure(options, image, tools));
      result.loadAverage1m = { before: round(loadBefore, 2), after: round(os.loadavg()[0], 2) };
      const busyAfter = busyCpuSeconds();
      if (busyBefore !== undefined && busyAfter !== undefined) {
        // Machine-wide busy CPU time minus what the measured conversions and this script used: everyone else's.
        const own = process.cpuUsage(ownBefore);
        const ours = [...result.qemu.runs, ...result.qcow.runs].reduce((sum, run) => sum + run.user + run.system, 0) + (own.user + own.system) / 1e6;
        const elapsed = Number(process.hrtime.bigint() - startedAt) / 1e9;
        result.otherCpuCores = round(Math.max(0, busyAfter - busyBefore - ours) / elapsed, 2);
      }
      results.push(result);
    }
    const text = report(results, { runs: options.runs, workDir: options.workDir, qemuVersion, loadStart, startup });
    const json = {
      date: new Date().toISOString(),
      runs: options.runs,
      targets: { ratio: TARGET_RATIO, peakRssMiB: TARGET_RSS_MIB },
      environment: {
        node: process.versions.node,
        qemuImg: qemuVersion,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        loadStart,
        loadEnd: os.loadavg(),
        workDir: options.workDir,
        sourceDir,
        qcow: qcowCommand.join(' '),
      },
      startupSeconds: startup,
      results,
    };
    if (options.json === '-') {
      process.stderr.write(`${text}\n`);
      process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    } else {
      process.stdout.write(`${text}\n`);
      if (options.json !== undefined) fs.writeFileSync(options.json, `${JSON.stringify(json, null, 2)}\n`);
    }
    if (results.some((r) => !r.identical)) {
      log('convert-bench: qcow and qemu-img outputs differ; the timings above compare different work');
      process.exitCode = 2;
    }
  } finally {
    if (cleanUp) {
      fs.rmSync(options.workDir, { recursive: true, force: true });
    } else if (createdWorkDir || options.keep) {
      log(`kept ${options.workDir} (images reused by the next run; delete it when done)`);
    }
    cleanUp = false;
  }
}

try {
  main();
} catch (error) {
  if (error instanceof BenchError) {
    process.stderr.write(`convert-bench: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
