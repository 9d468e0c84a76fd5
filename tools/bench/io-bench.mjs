#!/usr/bin/env node
// Benchmark: `qcow bench` against `qemu-img bench` with the same flags, same machine, same run, alternating tools.
// Cases (issue 3): 4 KiB and 64 KiB allocating writes at queue depth 16 into an empty 4 GiB image, and 4 KiB reads
// of an allocated image. Reports the median of each tool's own "Run completed in" time and of the whole process's
// wall time (open and close included), and their ratios. A report, not a test: a missed target exits 0.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

const USAGE = `Usage: node tools/bench/io-bench.mjs [--runs N] [--only NAMES] [--work-dir DIR] [--json FILE]   (or: pnpm bench:io)

  --runs N        timed runs per tool and case, alternating tools (default 7)
  --only NAMES    comma-separated case names: write-4k, write-64k, read-4k
  --work-dir DIR  where images live (default /dev/shm/qcow-io-bench; should be a RAM disk)
  --json FILE     also write the results as JSON`;

const CASES = [
  { name: 'write-4k', what: '4 KiB allocating writes, QD16, empty 4 GiB image', flags: ['-w', '-c', '100000', '-d', '16', '-s', '4k'], fresh: true },
  { name: 'write-64k', what: '64 KiB allocating writes, QD16, empty 4 GiB image', flags: ['-w', '-c', '20000', '-d', '16', '-s', '64k'], fresh: true },
  { name: 'read-4k', what: '4 KiB reads, QD16, allocated image', flags: ['-c', '100000', '-d', '16', '-s', '4k'], fresh: false },
];

function parseOptions(argv) {
  const options = { runs: 7, only: undefined, workDir: '/dev/shm/qcow-io-bench', json: undefined };
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  while (args.length > 0) {
    const arg = args.shift();
    const value = () => {
      const next = args.shift();
      if (next === undefined) fail(`${arg} needs a value`);
      return next;
    };
    if (arg === '--runs') options.runs = Number(value());
    else if (arg === '--only') options.only = value().split(',');
    else if (arg === '--work-dir') options.workDir = value();
    else if (arg === '--json') options.json = value();
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else fail(`unknown option ${arg}`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) fail('--runs must be a positive integer');
  return options;
}

function fail(message) {
  process.stderr.write(`io-bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function run(command, args) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { stdout: result.stdout, wall };
}

const TOOLS = {
  'qemu-img': (args) => run('qemu-img', ['bench', ...args]),
  qcow: (args) => run(process.execPath, [path.join(repoRoot, 'packages/cli/bin/qcow.cjs'), 'bench', ...args]),
};

function reported(stdout) {
  const match = /Run completed in ([\d.]+) seconds/.exec(stdout);
  if (!match) throw new Error(`no "Run completed" line in:\n${stdout}`);
  return Number(match[1]);
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function emptyImage(file) {
  fs.rmSync(file, { force: true });
  run('qemu-img', ['create', '-q', '-f', 'qcow2', file, '4G']);
}

function measure(options, benchCase) {
  const image = path.join(options.workDir, `${benchCase.name}.qcow2`);
  if (!benchCase.fresh) {
    // The read case reads what the 4 KiB write case writes: 400 MB allocated from offset 0.
    emptyImage(image);
    run('qemu-img', ['bench', '-q', '-w', '-c', '100000', '-d', '16', '-s', '4k', '--pattern=165', image]);
  }
  const times = { 'qemu-img': { reported: [], wall: [] }, qcow: { reported: [], wall: [] } };
  for (let i = 0; i < options.runs; i++) {
    // Alternate which tool goes first, so drift on a noisy machine hits both alike.
    const order = i % 2 === 0 ? ['qemu-img', 'qcow'] : ['qcow', 'qemu-img'];
    for (const tool of order) {
      if (benchCase.fresh) emptyImage(image);
      const { stdout, wall } = TOOLS[tool]([...benchCase.flags, image]);
      times[tool].reported.push(reported(stdout));
      times[tool].wall.push(wall);
    }
  }
  if (benchCase.fresh) {
    // The image the last qcow run wrote must be one QEMU finds clean and equal to what qemu-img bench writes.
    const check = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`qemu-img check after qcow bench: ${check.stdout}${check.stderr}`);
  }
  fs.rmSync(image, { force: true });
  const summary = (tool) => ({ reported: median(times[tool].reported), wall: median(times[tool].wall) });
  return { name: benchCase.name, what: benchCase.what, flags: benchCase.flags.join(' '), qemu: summary('qemu-img'), qcow: summary('qcow'), runs: times };
}

function main() {
  const options = parseOptions(process.argv.slice(2));
  fs.mkdirSync(options.workDir, { recursive: true });
  const cases = CASES.filter((c) => options.only === undefined || options.only.includes(c.name));
  const results = [];
  for (const benchCase of cases) {
    process.stderr.write(`${benchCase.name}: ${options.runs} runs per tool...\n`);
    results.push(measure(options, benchCase));
  }
  const qemuVersion = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} (\`pnpm bench:io --runs ${options.runs}\`, Node ${process.versions.node}, ${qemuVersion}; images on ${options.workDir}):`,
    '',
    '| case | `bench` flags | qemu-img s | qcow s | ratio | qemu-img wall s | qcow wall s | wall ratio |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
    ...results.map((r) =>
      [r.what, `\`${r.flags}\``, r.qemu.reported.toFixed(3), r.qcow.reported.toFixed(3), `${(r.qcow.reported / r.qemu.reported).toFixed(2)}x`,
        r.qemu.wall.toFixed(3), r.qcow.wall.toFixed(3), `${(r.qcow.wall / r.qemu.wall).toFixed(2)}x`].join(' | ').replace(/^/, '| ').concat(' |'),
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (options.json) fs.writeFileSync(options.json, JSON.stringify(results, null, 2));
  fs.rmSync(options.workDir, { recursive: true, force: true });
}

main();
