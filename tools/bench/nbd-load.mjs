#!/usr/bin/env node
// Load test (issue 9): `qcow serve` with several fio clients writing and verifying (crc32c) at once, each in its own
// quarter of one image, for minutes. Samples the server's resident memory every second and reports the peak, the
// end and the average of the first and last minutes (flat memory: no per-request leak), the IOPS, and whether
// `qemu-img check` finds the image clean afterwards. A report, not a test: it exits 0 whatever the numbers, 1 on a
// failed tool (fio verify errors included: a verify failure means data was lost).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const qcowCli = path.join(here, '../../packages/cli/bin/qcow.cjs');
const argv = process.argv.slice(2).filter((a) => a !== '--');
const option = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const seconds = Number(option('--seconds', 180));
const clients = Number(option('--clients', 4));
const regionGiB = Number(option('--region-gib', 1));
// Users keep images on disks: the default directory is on the disk (os.tmpdir()), where `--aio=auto` picks the
// cothread; `--dir /dev/shm/...` measures the in-memory path.
const workDir = option('--dir', path.join(os.tmpdir(), 'qcow-nbd-load'));
const extraServe = option('--serve-args', '').split(' ').filter(Boolean);

function sh(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error) throw result.error;
  return result;
}

function waitForSocket(socket) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const attempt = () => {
      const probe = net.connect(socket);
      probe.once('connect', () => (probe.destroy(), resolve()));
      probe.once('error', () => (Date.now() - started > 20_000 ? reject(new Error('qcow serve never listened')) : setTimeout(attempt, 50)));
    };
    attempt();
  });
}

function memoryMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

function runFio(index, uri) {
  const args = [
    `--name=client${index}`,
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=16',
    `--offset=${index * regionGiB}g`,
    `--size=${regionGiB}g`,
    '--verify=crc32c',
    // Verify as it goes, not only at the end, so a lost write shows during the run.
    '--verify_backlog=4096',
    '--verify_fatal=1',
    '--time_based',
    `--runtime=${seconds}`,
    '--output-format=json',
  ];
  return new Promise((resolve, reject) => {
    // fio writes its verify state files into its working directory.
    const child = spawn('fio', args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`fio client ${index} exited ${code}: ${err.slice(-2000)}${out.slice(-2000)}`));
      const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
      // fio reports verify reads with a zero runtime (and so a meaningless iops): count I/Os over the job's time.
      const seconds = job.job_runtime / 1000;
      resolve({ iops: (job.write.total_ios + job.read.total_ios) / seconds, writeIops: job.write.total_ios / seconds, errors: job.error });
    });
  });
}

async function main() {
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  const image = path.join(workDir, 'load.qcow2');
  const socket = path.join(workDir, 'nbd.sock');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', image, `${clients * regionGiB}G`]);
  const server = spawn(process.execPath, [qcowCli, 'serve', '-t', `--shared=${clients}`, '-k', socket, ...extraServe, image], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let serverErr = '';
  server.stderr.on('data', (chunk) => (serverErr = (serverErr + chunk).slice(-4000)));
  const exited = new Promise((resolve) => server.once('exit', resolve));
  await waitForSocket(socket);

  const samples = [];
  const sampler = setInterval(() => samples.push(memoryMiB(server.pid)), 1000);
  const started = Date.now();
  let results;
  try {
    results = await Promise.all(Array.from({ length: clients }, (_, i) => runFio(i, `nbd+unix:///?socket=${socket}`)));
  } finally {
    clearInterval(sampler);
  }
  const elapsed = (Date.now() - started) / 1000;
  const end = memoryMiB(server.pid);
  server.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) throw new Error(`qcow serve exited ${code}: ${serverErr}`);
  const check = sh('qemu-img', ['check', image]);
  const minute = Math.min(60, Math.floor(samples.length / 2));
  const average = (list) => list.reduce((sum, s) => sum + s.rss, 0) / Math.max(1, list.length);
  const report = {
    seconds: elapsed.toFixed(0),
    clients,
    iops: results.reduce((sum, r) => sum + r.iops, 0).toFixed(0),
    writeIops: results.reduce((sum, r) => sum + r.writeIops, 0).toFixed(0),
    firstMinuteRss: average(samples.slice(0, minute)).toFixed(0),
    lastMinuteRss: average(samples.slice(-minute)).toFixed(0),
    peakRss: end.peak.toFixed(0),
    endRss: end.rss.toFixed(0),
    check: check.status === 0 ? 'clean' : `exit ${check.status}: ${check.stdout.trim().split('\n')[0]}`,
  };
  // findmnt lists every file system stacked on the mount point: the top one is what the image lives on.
  const fsType = sh('findmnt', ['-no', 'FSTYPE', '-T', workDir]).stdout.trim().split('\n')[0];
  const dirFlag = process.argv.includes('--dir') ? ` --dir ${workDir}` : '';
  console.log(`Measured ${new Date().toISOString().slice(0, 10)} (\`pnpm bench:load --seconds ${seconds}${dirFlag}\`, Node ${process.version}; image on ${fsType} in ${workDir}):`);
  console.log('');
  console.log('| clients x fio job | seconds | IOPS (writes + verify reads) | of which writes | RSS first minute MiB | RSS last minute MiB | peak RSS MiB | RSS at end MiB | qemu-img check |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|---|');
  console.log(
    `| ${clients} x randwrite 4 KiB QD16, crc32c verify, ${regionGiB} GiB each | ${report.seconds} | ${report.iops} | ${report.writeIops} | ${report.firstMinuteRss} | ${report.lastMinuteRss} | ${report.peakRss} | ${report.endRss} | ${report.check} |`,
  );
  fs.rmSync(workDir, { recursive: true, force: true });
  if (check.status !== 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`nbd-load: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
