import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { qcow, requireTool, run } from '@q/test-support';
import { guestImage, type GuestImage } from '../src/guest/guest-image.js';
import { makeBenchBase } from './bench-base.js';
import { benchCases, type BenchCase } from './bench-cases.js';
import { benchSizes, type BenchOptions } from './bench-options.js';
import { benchScenario } from './bench-scenario.js';
import { benchTable } from './bench-table.js';
import { measuredBoot, type BootMeasurement } from './measured-boot.js';

/**
 * The whole benchmark: one base, then `runs` rounds of one boot per server (qemu-nbd and each qcow variant), the
 * order reversed every other round so that a slow patch of the machine does not always fall on the same server.
 * Every boot runs the same scenario on its own fresh overlay. Returns the markdown report.
 */
export async function runBench(options: BenchOptions): Promise<string> {
  for (const tool of ['mke2fs', 'qemu-img', 'qemu-nbd', 'qemu-system-x86_64']) requireTool(tool);
  const guest = guestImage();
  const sizes = benchSizes(options);
  const cases = benchCases(sizes);
  const work = mkdtempSync(join(options.dir, 'qcow-vm-bench-'));
  try {
    const loadBefore = loadavg()[0] as number;
    const base = makeBenchBase(work, sizes.backingMiB);
    const plan = { guest, dir: work, basePath: base.path, scenario: benchScenario(cases, sizes, base.backingMd5), cases, timeoutMs: 900_000 };
    const servers = ['qemu-nbd', ...options.servers];
    const results = new Map<string, BootMeasurement[]>(servers.map((server) => [server, []]));
    for (let round = 1; round <= options.runs; round++) {
      for (const server of round % 2 === 1 ? servers : [...servers].reverse()) {
        const measured = await measuredBoot(plan, server, `${server.replace(':', '-')}-${round}`);
        results.get(server)?.push(measured);
        console.log(`  ${server} round ${round}: ${progressLine(cases, measured)}`);
      }
    }
    const heading = headingLines(options, guest, { before: loadBefore, after: loadavg()[0] as number });
    return benchTable({ cases, variants: options.servers, results, heading });
  } finally {
    if (options.keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function progressLine(cases: readonly BenchCase[], measured: BootMeasurement): string {
  const steps = cases.map((benchCase) => {
    const time = measured.steps.get(benchCase.id);
    return `${benchCase.id} ${time?.guest.toFixed(2)} s (host ${time?.host.toFixed(2)} s)`;
  });
  return `${steps.join(', ')}; untimed: boot and set-up ${measured.setupSeconds.toFixed(1)} s, checks ${measured.checkSeconds.toFixed(1)} s`;
}

/** What the table was measured with, so that a pasted table carries its own conditions (one paragraph). */
function headingLines(options: BenchOptions, guest: GuestImage, load: { before: number; after: number }): string {
  // "qemu-nbd 7.2.22 (Debian ...)", "QEMU emulator version 7.2.22 (...)", "qcow version 0.1.0 (...)": the first x.y.z.
  const version = (text: string): string => /\d+\.\d+\.\d+/.exec(text)?.[0] ?? 'unknown';
  const qemuNbd = version(run('qemu-nbd', ['--version']).stdout);
  const qemu = version(run('qemu-system-x86_64', ['--version']).stdout);
  const ours = version(qcow(['--version']).stdout);
  const [kernel, kernelVersion] = guest.kernelKey.replace(/^linux-image-/, '').split('_');
  const fsType = run('df', ['--output=fstype', options.dir]).stdout.trim().split('\n')[1]?.trim() ?? 'unknown';
  const flags = options.servers.join(',') === 'qcow' ? 'default flags' : `variants ${options.servers.join(', ')}`;
  const boots = `${options.runs} boot${options.runs === 1 ? '' : 's'}`;
  return [
    `Measured ${new Date().toISOString().slice(0, 10)} (\`${options.command}\`${options.quick ? ', --quick: smoke-run sizes, not a measurement' : ''}):`,
    `qemu-nbd ${qemuNbd} (\`-f qcow2 --cache=writeback -t\`) against qcow ${ours} (\`qcow serve -t\`, ${flags}; Node ${process.versions.node}),`,
    `each serving a fresh overlay (\`qcow create -b base -F qcow2\`) on a Unix socket; images in ${options.dir} (${fsType}).`,
    `Guest: Debian kernel ${kernel} (${kernelVersion}) with busybox, under qemu-system-x86_64 ${qemu} (TCG, 1 vCPU, 512 MiB),`,
    `the export as its virtio-blk disk. Median of ${boots} per server, servers alternating;`,
    `each step timed by the guest's clock (/proc/uptime, 10 ms resolution) after an untimed flush.`,
    `Load average ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after (${cpus().length} cores).`,
  ].join(' ');
}
