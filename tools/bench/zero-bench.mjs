#!/usr/bin/env node
// Zero-write and discard benchmark: `qcow io` against `qemu-io` on the same images, and `qcow serve` against
// `qemu-nbd` with qemu-io as the NBD client (WRITE_ZEROES and TRIM, what mkfs and fstrim send), alternating the
// tools, medians of wall time. Every timed run starts from a fresh copy of the prepared image (the copy, a sync and
// a 1 s settle are not timed). After each job the two tools' outputs are compared with `qemu-img compare`.
// A report, not a test: it exits 0 whatever the ratios, 1 on errors. See README.md in this directory.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const qcowCli = path.resolve(here, '../../packages/cli/bin/qcow.cjs');

const USAGE = `Usage: node tools/bench/zero-bench.mjs [--runs N] [--work-dir DIR]   (or: pnpm bench:zero ...)

  --runs N        timed runs per tool and job (default 5)
  --work-dir DIR  where the images go (default /dev/shm/qcow-zero-bench; a disk directory measures disk-backed images)`;

function parseOptions(argv) {
  const options = { runs: 5, workDir: '/dev/shm/qcow-zero-bench' };
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  while (args.length > 0) {
    const arg = args.shift();
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--runs') options.runs = Number(args.shift());
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
  return options;
}

function must(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr}${result.stdout.slice(-300)}`);
  return result.stdout;
}

/** The jobs: a prepared image (qemu-img create + qemu-io commands) and the commands timed on a copy of it. */
const JOBS = [
  { name: 'write -z, empty 256 GiB image', size: '256G', prepare: [], commands: ['write -z -n 0 256G'] },
  { name: 'write -z -u, 64 GiB with 1 GiB of data', size: '64G', prepare: ['write -P 1 0 512M', 'write -P 2 32G 512M'], commands: ['write -z -n -u 0 64G'] },
  { name: 'discard 2 GiB, 1 GiB of data', size: '64G', prepare: ['write -P 1 0 512M', 'write -P 2 1G 512M'], commands: ['discard 0 2147483136'] },
  { name: 'NBD WRITE_ZEROES 64 GiB, empty image', size: '64G', prepare: [], commands: ['write -z -n 0 64G'], nbd: true },
  { name: 'NBD TRIM 2 GiB, 1 GiB of data', size: '64G', prepare: ['write -P 1 0 512M', 'write -P 2 1G 512M'], commands: ['discard 0 2147483136'], nbd: true },
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function timed(command, args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0 || /failed|error/i.test(result.stdout)) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return seconds;
}

/** Starts an NBD server on a unix socket and waits for the socket. Returns a stop function. */
async function startServer(tool, image, socket) {
  fs.rmSync(socket, { force: true });
  const [command, args] =
    tool === 'qemu'
      ? ['qemu-nbd', ['--cache=writeback', '--discard=unmap', '-f', 'qcow2', '-k', socket, image]]
      : [process.execPath, [qcowCli, 'serve', '--discard=unmap', '-f', 'qcow2', '-k', socket, image]];
  const child = spawn(command, args, { stdio: 'ignore' });
  for (let waited = 0; !fs.existsSync(socket); waited += 20) {
    if (waited > 10_000) throw new Error(`${command} never opened ${socket}`);
    await sleep(20);
  }
  return () =>
    new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
}

async function runOnce(tool, job, image, socket) {
  const io = job.commands.flatMap((c) => ['-c', c]);
  if (!job.nbd) return tool === 'qemu' ? timed('qemu-io', ['-f', 'qcow2', ...io, image]) : timed(process.execPath, [qcowCli, 'io', '-f', 'qcow2', ...io, image]);
  const stop = await startServer(tool, image, socket);
  try {
    return timed('qemu-io', ['-f', 'raw', ...io, `nbd+unix:///?socket=${socket}`]);
  } finally {
    await stop();
  }
}

async function main(options) {
  fs.mkdirSync(options.workDir, { recursive: true });
  const original = path.join(options.workDir, 'original.qcow2');
  const socket = path.join(options.workDir, 'nbd.sock');
  const outputs = { qemu: path.join(options.workDir, 'qemu.qcow2'), qcow: path.join(options.workDir, 'qcow.qcow2') };
  console.log(`work dir ${options.workDir}, ${options.runs} runs per tool, medians\n`);
  console.log('| job | qemu | qcow | ratio |');
  console.log('|---|--:|--:|--:|');
  try {
    for (const job of JOBS) {
      fs.rmSync(original, { force: true });
      must('qemu-img', ['create', '-q', '-f', 'qcow2', original, job.size]);
      if (job.prepare.length > 0) must('qemu-io', ['-f', 'qcow2', ...job.prepare.flatMap((c) => ['-c', c]), original]);
      const times = { qemu: [], qcow: [] };
      for (let run = 0; run < options.runs; run++) {
        for (const tool of run % 2 === 0 ? ['qemu', 'qcow'] : ['qcow', 'qemu']) {
          fs.copyFileSync(original, outputs[tool]);
          spawnSync('sync');
          await sleep(1000);
          times[tool].push(await runOnce(tool, job, outputs[tool], socket));
        }
      }
      must('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', outputs.qemu, outputs.qcow]);
      const [qemu, qcow] = [median(times.qemu), median(times.qcow)];
      console.log(`| ${job.name} | ${qemu.toFixed(3)} s | ${qcow.toFixed(3)} s | ${(qcow / qemu).toFixed(2)}x |`);
    }
  } finally {
    for (const file of [original, socket, ...Object.values(outputs)]) fs.rmSync(file, { force: true });
  }
}

main(parseOptions(process.argv.slice(2))).catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
