#!/usr/bin/env node
// Benchmark: `qcow convert -O qcow2` (plain, -c zlib, -c zstd) against `qemu-img convert` with the same flags, on a
// 2 GiB ext4 filesystem image, same machine, same run, tools alternating. Reports median wall times as ratios and
// output sizes against the targets (plain <= 1.0x, compressed <= 0.6x qemu-img's time; compressed output at most
// 5% larger than qemu-img's). A report, not a test: a missed target exits 0; a tool failing or outputs whose
// content differs exit 1. See README.md in this directory.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
/** Milliseconds to wait before each timed run (see the loop). */
const SETTLE_MS = 2000;

const MODES = [
  { name: 'plain', args: [], timeTarget: 1.0 },
  { name: 'zlib', args: ['-c'], timeTarget: 0.6, sizeTarget: 1.05 },
  { name: 'zstd', args: ['-c', '-o', 'compression_type=zstd'], timeTarget: 0.6, sizeTarget: 1.05 },
];

function parseOptions(argv) {
  const options = { runs: 3, only: undefined, workDir: '/dev/shm/qcow-bench', qcow: path.join(repoRoot, 'packages/cli/bin/qcow.cjs'), qemuImg: 'qemu-img', sourceDir: undefined, keep: false };
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  while (args.length > 0) {
    const arg = args.shift();
    const value = () => args.shift() ?? fail(`${arg} needs a value`, 64);
    if (arg === '--runs') options.runs = Number(value());
    else if (arg === '--only') options.only = value().split(',');
    else if (arg === '--work-dir') options.workDir = value();
    else if (arg === '--qcow') options.qcow = path.resolve(value());
    else if (arg === '--qemu-img') options.qemuImg = value();
    else if (arg === '--source-dir') options.sourceDir = value();
    else if (arg === '--keep') options.keep = true;
    else if (arg === '-h' || arg === '--help') {
      console.log('Usage: node tools/bench/convert-qcow2-bench.mjs [--runs N] [--only plain,zlib,zstd] [--work-dir DIR] [--source-dir DIR] [--qcow PATH] [--qemu-img PATH] [--keep]');
      process.exit(0);
    } else fail(`unknown option ${arg}`, 64);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) fail('--runs: not a positive integer', 64);
  return options;
}

function fail(message, code = 1) {
  console.error(`convert-qcow2-bench: ${message}`);
  process.exit(code);
}

function run(command, args) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr}`);
}

/** One conversion, timed from here (monotonic clock). */
function timed(command, args) {
  const start = process.hrtime.bigint();
  run(command, args);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function sourceImage(options) {
  fs.mkdirSync(options.workDir, { recursive: true });
  const file = path.join(options.workDir, 'fs-qcow2-bench.raw');
  if (fs.existsSync(file)) return file;
  const sourceDir = options.sourceDir ?? ['/usr/lib/x86_64-linux-gnu', '/usr/share', '/usr'].find((dir) => fs.existsSync(dir));
  console.error(`setup: mke2fs -q -t ext4 -d ${sourceDir} (2 GiB)`);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', sourceDir, `${file}.tmp`, '2G']);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

function main() {
  const options = parseOptions(process.argv.slice(2));
  const source = sourceImage(options);
  const qcow = options.qcow.endsWith('js') ? [process.execPath, options.qcow] : [options.qcow];
  const rows = [];
  for (const mode of MODES.filter((m) => options.only === undefined || options.only.includes(m.name))) {
    const ours = path.join(options.workDir, `out-qcow-${mode.name}.qcow2`);
    const theirs = path.join(options.workDir, `out-qemu-${mode.name}.qcow2`);
    const times = { qcow: [], qemu: [] };
    for (let i = 0; i < options.runs; i++) {
      // Alternating, and which tool starts alternates too, so drift in machine load hits both alike.
      const order = i % 2 === 0 ? ['qcow', 'qemu'] : ['qemu', 'qcow'];
      for (const tool of order) {
        const output = tool === 'qcow' ? ours : theirs;
        fs.rmSync(output, { force: true });
        // As the other benches do (README.md): the other tool's output written out, and the memory freed by the
        // deletion settled (this VM hands freed memory back to the host about 2 s later, and whoever allocates
        // right after a deletion pays for it). Without this the ratios of one configuration ranged 0.56x-1.41x.
        run('sync', []);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS);
        const [command, ...prefix] = tool === 'qcow' ? qcow : [options.qemuImg];
        times[tool].push(timed(command, [...prefix, 'convert', '-O', 'qcow2', ...mode.args, source, output]));
      }
    }
    run(options.qemuImg, ['compare', '-q', theirs, ours]);
    run(options.qemuImg, ['check', '-q', ours]);
    const ratio = median(times.qcow) / median(times.qemu);
    const sizeRatio = fs.statSync(ours).size / fs.statSync(theirs).size;
    rows.push({ mode, qcow: median(times.qcow), qemu: median(times.qemu), ratio, sizeRatio });
    if (!options.keep) for (const file of [ours, theirs]) fs.rmSync(file, { force: true });
  }
  console.log('mode   qcow s   qemu-img s   time ratio (target)   size ratio (target)');
  for (const { mode, qcow: q, qemu, ratio, sizeRatio } of rows) {
    const time = `${ratio.toFixed(2)}x (<= ${mode.timeTarget}) ${ratio <= mode.timeTarget ? 'ok' : 'MISSED'}`;
    const size = mode.sizeTarget === undefined ? `${sizeRatio.toFixed(3)}` : `${sizeRatio.toFixed(3)} (<= ${mode.sizeTarget}) ${sizeRatio <= mode.sizeTarget ? 'ok' : 'MISSED'}`;
    console.log(`${mode.name.padEnd(6)} ${q.toFixed(2).padStart(6)}   ${qemu.toFixed(2).padStart(10)}   ${time.padEnd(21)} ${size}`);
  }
}

main();
