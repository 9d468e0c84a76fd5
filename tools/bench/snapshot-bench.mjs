#!/usr/bin/env node
// Benchmark (issue 4): a 10 GiB image with 64 KiB clusters, 1 GiB of data spread over it and 200 internal
// snapshots made by qemu-img; time creating one more snapshot and deleting one, with `qcow snapshot` and
// `qemu-img snapshot` on copies of the same image, alternating. Target: qcow under a second for each.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const qcowCli = path.join(here, '../../packages/cli/bin/qcow.cjs');
const args = process.argv.slice(2).filter((a) => a !== '--');
const runs = Number(args[args.indexOf('--runs') + 1] ?? 5) || 5;
const workDir = '/dev/shm/qcow-snapshot-bench';

function run(command, argv) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, argv, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} exited ${result.status}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const tools = {
  'qemu-img': (argv) => run('qemu-img', ['snapshot', ...argv]),
  qcow: (argv) => run(process.execPath, [qcowCli, 'snapshot', ...argv]),
};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

fs.rmSync(workDir, { recursive: true, force: true });
fs.mkdirSync(workDir, { recursive: true });
const base = path.join(workDir, 'base.qcow2');
process.stderr.write('building a 10 GiB image with 200 snapshots...\n');
run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '10G']);
run('qemu-img', ['bench', '-q', '-w', '-c', '16384', '-d', '16', '-s', '64k', '-S', '640k', base]);
for (let i = 1; i <= 200; i++) run('qemu-img', ['snapshot', '-c', `snap${i}`, base]);

const times = { 'qemu-img': { create: [], delete: [] }, qcow: { create: [], delete: [] } };
for (let i = 0; i < runs; i++) {
  for (const tool of i % 2 === 0 ? ['qemu-img', 'qcow'] : ['qcow', 'qemu-img']) {
    const image = path.join(workDir, `${tool}.qcow2`);
    fs.copyFileSync(base, image);
    times[tool].create.push(tools[tool](['-c', 'one-more', image]));
    times[tool].delete.push(tools[tool](['-d', 'snap100', image]));
    const check = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`qemu-img check after ${tool}: ${check.stdout}${check.stderr}`);
  }
}
fs.rmSync(workDir, { recursive: true, force: true });

const row = (op) => {
  const qemu = median(times['qemu-img'][op]);
  const qcow = median(times.qcow[op]);
  return `| ${op} one snapshot | ${qemu.toFixed(3)} | ${qcow.toFixed(3)} | ${qcow < 1 ? 'pass' : 'MISS'} |`;
};
process.stdout.write(
  [
    `Measured ${new Date().toISOString().slice(0, 10)} (\`pnpm bench:snapshot --runs ${runs}\`, Node ${process.versions.node}; 10 GiB image, 64 KiB clusters, 1 GiB of data, 200 snapshots; whole-process wall time, medians):`,
    '',
    '| operation | qemu-img s | qcow s | target (qcow < 1 s) |',
    '|---|--:|--:|---|',
    row('create'),
    row('delete'),
    '',
  ].join('\n'),
);
