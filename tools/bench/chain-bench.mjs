#!/usr/bin/env node
// Benchmark (issue 11): `qcow rebase` (safe mode) and `qcow commit` against qemu-img on copies of the same chains,
// alternating, as ratios of whole-process wall time (target: at most 1.0x). The chain: a 1 GiB base with 512 MiB
// of data, an overlay with 256 MiB of its own spread over the disk, and a new base holding half of the old one's
// data and 64 MiB of its own (so a rebase reads both sides and writes where they differ). Everything lives in
// --work-dir (default /dev/shm/qcow-chain-bench; a directory on disk measures images where users keep them).
// Flags: --runs N (default 5), --size-mib N (virtual size, default 1024), --work-dir DIR.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const qcowCli = path.join(here, '../../packages/cli/bin/qcow.cjs');
const args = process.argv.slice(2).filter((a) => a !== '--');
const flag = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback);
const runs = flag('--runs', 5);
const SETTLE_MS = 2000;
const sizeMiB = flag('--size-mib', 1024);
const workDir = args.includes('--work-dir') ? path.resolve(args[args.indexOf('--work-dir') + 1]) : '/dev/shm/qcow-chain-bench';

function run(command, argv, cwd = workDir) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, argv, { encoding: 'utf8', cwd, maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} exited ${result.status}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** qemu-img bench writes: `count` requests of `size` every `step` bytes from `offset`, pattern by -P. */
function fill(image, { count, size, step, offset, pattern }) {
  run('qemu-img', ['bench', '-q', '-w', '-c', String(count), '-d', '16', '-s', size, '-S', step, '-o', String(offset), '--pattern', String(pattern), image]);
}

fs.rmSync(workDir, { recursive: true, force: true });
fs.mkdirSync(workDir, { recursive: true });
const size = `${sizeMiB}M`;
const MiB = 1024 * 1024;
process.stderr.write(`building the chains (${sizeMiB} MiB virtual)...\n`);
run('qemu-img', ['create', '-q', '-f', 'qcow2', 'old.qcow2', size]);
fill('old.qcow2', { count: sizeMiB / 2, size: '1M', step: '2M', offset: 0, pattern: 0x11 });
run('qemu-img', ['create', '-q', '-f', 'qcow2', 'new.qcow2', size]);
// Half the old data again (same bytes at the same places), and data of its own where the old base has none.
fill('new.qcow2', { count: sizeMiB / 4, size: '1M', step: '4M', offset: 0, pattern: 0x11 });
fill('new.qcow2', { count: sizeMiB / 16, size: '1M', step: '16M', offset: 5 * MiB, pattern: 0x22 });
run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'old.qcow2', '-F', 'qcow2', 'top.qcow2']);
fill('top.qcow2', { count: sizeMiB / 4, size: '1M', step: '4M', offset: 3 * MiB, pattern: 0x33 });

const operations = {
  rebase: (dir, tool) => (tool === 'qemu-img' ? run('qemu-img', ['rebase', '-b', 'new.qcow2', '-F', 'qcow2', 'top.qcow2'], dir) : run(process.execPath, [qcowCli, 'rebase', '-b', 'new.qcow2', '-F', 'qcow2', 'top.qcow2'], dir)),
  commit: (dir, tool) => (tool === 'qemu-img' ? run('qemu-img', ['commit', '-q', 'top.qcow2'], dir) : run(process.execPath, [qcowCli, 'commit', '-q', 'top.qcow2'], dir)),
};
const times = { rebase: { 'qemu-img': [], qcow: [] }, commit: { 'qemu-img': [], qcow: [] } };
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

for (let i = 0; i < runs; i++) {
  for (const tool of i % 2 === 0 ? ['qemu-img', 'qcow'] : ['qcow', 'qemu-img']) {
    for (const op of Object.keys(operations)) {
      const dir = path.join(workDir, `${tool}-${op}`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      for (const name of ['old.qcow2', 'new.qcow2', 'top.qcow2']) fs.copyFileSync(path.join(workDir, name), path.join(dir, name));
      // The copies are dirty in the page cache: on a disk, the tool's first sync would write them (hundreds of ms,
      // more or less of it done by background writeback by then). Written out first, every run starts alike.
      run('sync', []);
      // Freed memory goes back to the host (page reporting) and whoever allocates right after pays for it:
      // wait until that settles, as bench (convert) does (tools/bench/README.md).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS);
      times[op][tool].push(operations[op](dir, tool));
      for (const image of ['top.qcow2', 'old.qcow2']) run('qemu-img', ['check', '-q', image], dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
fs.rmSync(workDir, { recursive: true, force: true });

const rows = Object.keys(operations).map((op) => {
  const qemu = median(times[op]['qemu-img']);
  const qcow = median(times[op].qcow);
  return `| ${op} | ${qemu.toFixed(3)} | ${qcow.toFixed(3)} | ${(qcow / qemu).toFixed(2)}x | ${qcow <= qemu ? 'pass' : 'MISS'} |`;
});
process.stdout.write(
  [
    `Measured ${new Date().toISOString().slice(0, 10)} (\`pnpm bench:chain --runs ${runs}\`, Node ${process.versions.node}; ${sizeMiB} MiB chains in ${workDir}; whole-process wall time, medians):`,
    '',
    '| operation | qemu-img s | qcow s | ratio | target (<= 1.0x) |',
    '|---|--:|--:|--:|---|',
    ...rows,
    '',
  ].join('\n'),
);
