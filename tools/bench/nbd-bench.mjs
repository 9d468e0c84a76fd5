#!/usr/bin/env node
// Benchmark (issues 5 and 12): `qcow serve` against `qemu-nbd --cache=writeback` with fio's nbd engine, same
// machine, same run, alternating servers. Reports median IOPS per case, the ratio, and qcow serve's peak RSS. A
// report, not a test: missed targets exit 0. Target (issue 12): qcow >= 1.0x qemu-nbd on each case, on
// disk-backed images and on /dev/shm; raw served at least as fast as qcow2.
//
// Images live where users keep them: a directory on disk first (--disk-dir, default /var/tmp), then /dev/shm as a
// second table (--places disk,shm to choose). The guest-shaped cases come from a Linux guest booted from the
// server: 1 MiB writes at QD1, 1 MiB sequential reads through a backing file, 4 KiB writes into new clusters.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** qcow's IOPS over qemu-nbd's that each case must reach (issue 12). */
const TARGET = 1.0;
const qcowCli = path.join(here, '../../packages/cli/bin/qcow.cjs');
const argv = process.argv.slice(2).filter((a) => a !== '--');
const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 3) || 3;
const seconds = Number(argv[argv.indexOf('--seconds') + 1] ?? 5) || 5;
const option = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
/** `qcow:MODE` runs `qcow serve --aio=MODE` (auto, threads, cothread); plain `qcow` is the default (auto). */
const qcowServers = option('--servers', 'qcow').split(',');
const onlyCases = option('--cases', undefined)?.split(',').map(Number);
const places = option('--places', 'disk,shm').split(',');
const diskDir = option('--disk-dir', '/var/tmp');
const workDirOf = (place) => path.join(place === 'shm' ? '/dev/shm' : diskDir, 'qcow-nbd-bench');

const CASES = [
  { name: 'seq read 64 KiB QD8', image: 'full.qcow2', fio: ['--rw=read', '--bs=64k', '--iodepth=8'] },
  { name: 'rand read 4 KiB QD1', image: 'full.qcow2', fio: ['--rw=randread', '--bs=4k', '--iodepth=1'] },
  { name: 'rand read 4 KiB QD16', image: 'full.qcow2', fio: ['--rw=randread', '--bs=4k', '--iodepth=16'] },
  { name: 'rand write 4 KiB QD16, empty image', image: 'empty.qcow2', fio: ['--rw=randwrite', '--bs=4k', '--iodepth=16'], fresh: true },
  { name: 'guest: seq write 1 MiB QD1, empty image', image: 'empty.qcow2', fio: ['--rw=write', '--bs=1m', '--iodepth=1'], fresh: true },
  { name: 'guest: seq read 1 MiB QD1 through a backing file', image: 'overlay.qcow2', fio: ['--rw=read', '--bs=1m', '--iodepth=1'] },
  { name: 'guest: rand write 4 KiB QD1 into new clusters', image: 'empty.qcow2', fio: ['--rw=randwrite', '--bs=4k', '--iodepth=1'], fresh: true },
  { name: 'raw: seq read 64 KiB QD8', image: 'full.raw', fio: ['--rw=read', '--bs=64k', '--iodepth=8'] },
  { name: 'raw: rand read 4 KiB QD16', image: 'full.raw', fio: ['--rw=randread', '--bs=4k', '--iodepth=16'] },
];

function sh(command, args) {
  return shOr(command, () => '', args);
}

function shOr(command, context, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.slice(0, 2000)}\n${context()}`);
  return result.stdout;
}

function waitForPort(port) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve()));
      socket.once('error', () => (Date.now() - started > 10_000 ? reject(new Error(`port ${port} never opened`)) : setTimeout(attempt, 50)));
    };
    attempt();
  });
}

function peakRssMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function measure(server, image, fioArgs, port) {
  const format = image.endsWith('.raw') ? 'raw' : 'qcow2';
  const args =
    server === 'qemu-nbd'
      ? ['qemu-nbd', ['-f', format, '--cache=writeback', '-t', '-p', String(port), image]]
      : [process.execPath, [qcowCli, 'serve', '-f', format, '-t', '-p', String(port), ...aioArgs(server), image]];
  // QCOW_DEBUG=1: qcow serve logs every failed request; shown if fio fails.
  const child = spawn(args[0], args[1], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, QCOW_DEBUG: '1' } });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  try {
    await waitForPort(port);
    const out = shOr('fio', () => `${server} said: ${stderr}`, ['--name=bench', '--ioengine=nbd', `--uri=nbd://127.0.0.1:${port}`, '--size=1g', `--runtime=${seconds}`, '--time_based', '--output-format=json', ...fioArgs]);
    const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
    return { iops: job.read.iops + job.write.iops, rss: peakRssMiB(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const aioArgs = (server) => (server.includes(':') ? [`--aio=${server.split(':')[1]}`] : []);

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** One table: every case on images in `workDir`. */
async function measurePlace(place, firstPort) {
  const workDir = workDirOf(place);
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  const full = path.join(workDir, 'full.qcow2');
  process.stderr.write(`${workDir}: building a fully allocated 1 GiB image (pattern 0xa5), its raw copy and an empty overlay on it...\n`);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', full, '1G']);
  sh('qemu-img', ['bench', '-q', '-w', '-c', '16384', '-d', '16', '-s', '64k', '--pattern=165', full]);
  sh('qemu-img', ['convert', '-O', 'raw', full, path.join(workDir, 'full.raw')]);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'full.qcow2', '-F', 'qcow2', path.join(workDir, 'overlay.qcow2')]);
  const rows = [];
  let port = firstPort;
  for (const [index, benchCase] of CASES.entries()) {
    if (onlyCases !== undefined && !onlyCases.includes(index)) continue;
    const servers = ['qemu-nbd', ...qcowServers];
    const results = Object.fromEntries(servers.map((server) => [server, []]));
    const rss = Object.fromEntries(servers.map((server) => [server, 0]));
    for (let i = 0; i < runs; i++) {
      for (const server of i % 2 === 0 ? servers : [...servers].reverse()) {
        let image = path.join(workDir, benchCase.image);
        if (benchCase.fresh) {
          image = path.join(workDir, `fresh-${server.replace(':', '-')}.qcow2`);
          fs.rmSync(image, { force: true });
          sh('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G']);
        }
        // The previous run's dirty pages (5 s of writes) are written back while the next server runs and take a
        // core from it: every run starts from a clean page cache state instead.
        sh('sync', []);
        const result = await measure(server, image, benchCase.fio, port++);
        results[server].push(result.iops);
        rss[server] = Math.max(rss[server], result.rss);
      }
    }
    const qemu = median(results['qemu-nbd']);
    for (const server of qcowServers) {
      const qcow = median(results[server]);
      const label = qcowServers.length > 1 ? `${benchCase.name} (${server})` : benchCase.name;
      rows.push(`| ${label} | ${Math.round(qemu)} | ${Math.round(qcow)} | ${(qcow / qemu).toFixed(2)}x | ${rss[server].toFixed(0)} | ${qcow / qemu >= TARGET ? 'pass' : 'MISS'} |`);
    }
    process.stderr.write(`${place}: ${benchCase.name}: done\n`);
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  const where = place === 'shm' ? 'images on /dev/shm (RAM)' : `images on ${diskDir} (${fileSystemOf(diskDir)}, disk-backed)`;
  return [
    `Measured ${new Date().toISOString().slice(0, 10)} (\`pnpm bench:nbd --runs ${runs}${qcowServers.join(',') === 'qcow' ? '' : ` --servers ${qcowServers.join(',')}`}\`, ${seconds} s per run, fio nbd engine, Node ${process.versions.node}; ${where}):`,
    '',
    `| case | qemu-nbd IOPS | qcow IOPS | ratio | qcow peak RSS MiB | target (>= ${TARGET.toFixed(1)}x) |`,
    '|---|--:|--:|--:|--:|---|',
    ...rows,
    '',
  ].join('\n');
}

/** The file system type under `dir` (df -T), for the table's heading. */
function fileSystemOf(dir) {
  try {
    return sh('df', ['--output=fstype', dir]).split('\n')[1]?.trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main() {
  const tables = [];
  for (const [i, place] of places.entries()) tables.push(await measurePlace(place, 10950 + i * 1000));
  process.stdout.write(tables.join('\n'));
}

await main();
