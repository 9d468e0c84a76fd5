#!/usr/bin/env node
// Benchmark (issue 13): the same Linux guest workload against `qemu-nbd` and `qcow serve` on the same image, in the
// same run, alternating servers. A guest under QEMU (TCG) has its disk on the server's NBD export and times dd
// steps and a small-files step with its own clock. A report, not a test: slower results exit 0; a boot, a server
// or an image failing exits 1 with a one-line message, a bad command line 64.
//
// The guest's build and boot code lives in tests/vm as TypeScript that vitest runs, so this script only parses
// the command line and runs tests/vm/bench/vm-bench.ts through vitest (tests/vm/vitest.bench.config.ts). vitest's
// own output and the progress go to stderr, the markdown report to stdout.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const usage = `usage: pnpm bench:vm [--runs N] [--dir DIR] [--servers qcow,qcow:MODE,...] [--quick] [--keep]
  --runs N      boots per server (default 3); the table shows medians
  --dir DIR     where the images go (default /var/tmp: a disk, where users keep images)
  --servers S   qcow serve variants measured against qemu-nbd (default qcow; qcow:MODE adds --aio=MODE)
  --quick       small sizes: a smoke run of the whole path, not a measurement
  --keep        keep the work directory (base image) instead of deleting it`;

function parse(argv) {
  const options = { runs: 3, dir: '/var/tmp', servers: ['qcow'], quick: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--runs') options.runs = Number(value());
    else if (arg === '--dir') options.dir = path.resolve(value());
    else if (arg === '--servers') options.servers = value().split(',');
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs needs a positive integer');
  if (!fs.existsSync(options.dir)) throw new Error(`--dir ${options.dir} does not exist`);
  return options;
}

function fail(message, code = 1) {
  process.stderr.write(`bench:vm: ${message}\n`);
  process.exit(code);
}

async function main() {
  const argv = process.argv.slice(2).filter((arg) => arg !== '--');
  let options;
  try {
    options = parse(argv);
  } catch (error) {
    fail(`${error.message}\n${usage}`, 64);
  }
  if (!fs.existsSync(path.join(root, 'packages/cli/dist/qcow.cjs'))) fail('packages/cli/dist/qcow.cjs is missing: run pnpm build first');
  const vitest = path.join(path.dirname(createRequire(path.join(root, 'package.json')).resolve('vitest/package.json')), 'vitest.mjs');
  const resultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcow-vm-bench-result-'));
  const out = path.join(resultDir, 'result.json');
  const command = ['pnpm bench:vm', ...argv].join(' ');
  const child = spawn(process.execPath, [vitest, 'run', '--config', 'vitest.bench.config.ts'], {
    cwd: path.join(root, 'tests/vm'),
    // vitest's output to our stderr: stdout carries only the report.
    stdio: ['ignore', 2, 2],
    env: { ...process.env, QCOW_VM_BENCH: JSON.stringify({ ...options, command, out }) },
  });
  // Ctrl-C reaches vitest through the terminal's process group; wait for it to tear its guest and servers down.
  process.on('SIGINT', () => {});
  const code = await new Promise((resolve) => child.once('exit', (status, signal) => resolve(status ?? signal)));
  let result;
  try {
    result = JSON.parse(fs.readFileSync(out, 'utf8'));
  } catch {
    result = undefined;
  } finally {
    fs.rmSync(resultDir, { recursive: true, force: true });
  }
  if (result?.table !== undefined && code === 0) {
    process.stdout.write(result.table);
    return;
  }
  fail(result?.error ?? `vitest exited ${code} without a result (its output is above)`);
}

await main();
