#!/usr/bin/env node
// Start-up benchmark: whole-process wall time (and CPU time) of short `qcow` commands on a small image against qemu-img's and an
// empty Node (`node -e 0`), the floor every `qcow` command starts from. Runs alternate between the programs, so
// load from elsewhere on the machine falls on all of them alike; medians are reported. A report, not a test.
// See README.md in this directory.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

const USAGE = `Usage: node tools/bench/startup-bench.mjs [options]   (or: pnpm bench:startup [options])

  --runs N        timed runs of each command (default 9)
  --qcow PATH     qcow CLI to measure, run with this Node (default packages/cli/bin/qcow.cjs); repeatable, to compare builds
  --work-dir DIR  where the image and outputs go (default /dev/shm/qcow-startup; should be a RAM disk)
  -h, --help      this text`;

function parseOptions(argv) {
  const options = { runs: 9, qcow: [], workDir: '/dev/shm/qcow-startup' };
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  while (args.length > 0) {
    const arg = args.shift();
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--runs') options.runs = Number(args.shift());
    else if (arg === '--qcow') options.qcow.push(path.resolve(args.shift()));
    else if (arg === '--work-dir') options.workDir = path.resolve(args.shift());
    else {
      console.error(`unknown option ${arg}\n${USAGE}`);
      process.exit(64);
    }
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) {
    console.error('--runs needs a positive integer');
    process.exit(64);
  }
  if (options.qcow.length === 0) options.qcow.push(path.join(repoRoot, 'packages/cli/bin/qcow.cjs'));
  return options;
}

/** Children's user + system CPU time so far, in ms (/proc/self/stat cutime + cstime, in 10 ms clock ticks). */
function childrenCpuMs() {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/**
 * Wall ms from spawn to exit (stdout and stderr to /dev/null, as `>/dev/null 2>&1`) and CPU ms. CPU time is what
 * other load on the machine disturbs least; its 10 ms ticks make single runs coarse, so it is averaged.
 */
function timeOnce(command, args) {
  const cpu = childrenCpuMs();
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}`);
  return { wall: ms, cpu: childrenCpuMs() - cpu };
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function run(options) {
  fs.mkdirSync(options.workDir, { recursive: true });
  const image = path.join(options.workDir, 'small.qcow2');
  const out = path.join(options.workDir, 'out.raw');
  // 1 GiB virtual, 4 MiB written: a small image, where the start is most of a command's time.
  const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G'], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error('qemu-img create failed');
  const written = spawnSync('qemu-io', ['-c', 'write -P 0x5a 0 4M', image], { stdio: 'ignore' });
  if (written.status !== 0) throw new Error('qemu-io could not write the test image');

  const commands = {
    info: ['info', image],
    map: ['map', image],
    check: ['check', image],
    'convert -O raw': ['convert', '-O', 'raw', image, out],
  };
  const programs = [
    { name: 'node -e 0', argv: () => [process.execPath, ['-e', '0']] },
    { name: 'qemu-img', argv: (args) => ['qemu-img', args] },
    ...options.qcow.map((cli, i) => ({
      name: options.qcow.length === 1 ? 'qcow' : `qcow[${i}]`,
      argv: (args) => [process.execPath, [cli, ...args]],
    })),
  ];
  const samples = new Map();
  for (const [label, args] of Object.entries(commands)) {
    for (let i = 0; i < options.runs; i++) {
      for (const program of programs) {
        if (program.name === 'node -e 0' && label !== 'info') continue;
        const [command, argv] = program.argv(args);
        const key = program.name === 'node -e 0' ? 'node -e 0' : `${program.name}\t${label}`;
        if (!samples.has(key)) samples.set(key, []);
        samples.get(key).push(timeOnce(command, argv));
        fs.rmSync(out, { force: true });
      }
    }
    process.stderr.write(`${label}: done\n`);
  }
  fs.rmSync(options.workDir, { recursive: true, force: true });

  const wall = (key) => median(samples.get(key).map((sample) => sample.wall));
  const cpu = (key) => mean(samples.get(key).map((sample) => sample.cpu));
  const floor = wall('node -e 0');
  console.log(`\`node -e 0\`: ${floor.toFixed(0)} ms wall (median of ${options.runs}), ${cpu('node -e 0').toFixed(0)} ms CPU (mean)\n`);
  const names = programs.filter((p) => p.name !== 'node -e 0').map((p) => p.name);
  console.log(`| command | ${names.map((n) => `${n} ms`).join(' | ')} | ${names.filter((n) => n !== 'qemu-img').map((n) => `${n} CPU ms`).join(' | ')} |`);
  console.log(`|---|${names.map(() => '--:').join('|')}|${names.filter((n) => n !== 'qemu-img').map(() => '--:').join('|')}|`);
  for (const label of Object.keys(commands)) {
    const walls = names.map((n) => `${wall(`${n}\t${label}`).toFixed(0)}`);
    const cpus = names.filter((n) => n !== 'qemu-img').map((n) => cpu(`${n}\t${label}`).toFixed(0));
    console.log(`| ${label} | ${walls.join(' | ')} | ${cpus.join(' | ')} |`);
  }
}

run(parseOptions(process.argv.slice(2)));
