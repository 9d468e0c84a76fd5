import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { boot } from '../src/boot.js';
import type { GuestImage } from '../src/guest/guest-image.js';
import { makeOverlay } from '../src/host/base-image.js';
import { startQemuNbd, startServe, type ServeProcess } from '../src/host/serve-process.js';
import type { BenchCase } from './bench-cases.js';

/** One step's time: by the guest's clock (what the table uses) and between its report lines' arrival on the host. */
export interface StepTime {
  guest: number;
  host: number;
}

export interface BootMeasurement {
  steps: Map<string, StepTime>;
  /** The server's peak resident set (VmHWM), MiB. */
  peakRssMiB: number;
  /** Untimed guest seconds around the steps: kernel start to the scenario's data ready, and the checks after. */
  setupSeconds: number;
  checkSeconds: number;
}

export interface BootPlan {
  guest: GuestImage;
  /** The work directory: overlay, socket and initramfs go there, and are removed after the boot. */
  dir: string;
  basePath: string;
  scenario: string;
  cases: readonly BenchCase[];
  timeoutMs: number;
}

/**
 * One boot of the benchmark: a fresh overlay on the base, served by `server` on a Unix socket, the guest's disk
 * a virtio-blk drive on that export. `qemu-nbd` runs as issue 13 compares it (`-f qcow2 --cache=writeback`),
 * `qcow serve` with its default flags (or `--aio=MODE` for `qcow:MODE`). The server must exit 0 on SIGTERM after
 * the guest powers off; anything else is an error, not a slow result.
 */
export async function measuredBoot(plan: BootPlan, server: string, tag: string): Promise<BootMeasurement> {
  const top = makeOverlay({ path: plan.basePath }, join(plan.dir, `${tag}.qcow2`));
  const socket = join(plan.dir, `${tag}.sock`);
  const initrd = join(plan.dir, `${tag}.initrd`);
  let served: ServeProcess | undefined;
  try {
    served =
      server === 'qemu-nbd'
        ? await startQemuNbd(socket, ['-f', 'qcow2', '--cache=writeback', '-t', top])
        : await startServe(socket, ['-t', ...(server.includes(':') ? [`--aio=${server.split(':')[1]}`] : []), top]);
    const arrived = new Map<string, number>();
    const steps = new Map<string, StepTime>();
    const result = await boot(plan.guest, {
      name: tag,
      drive: `file=${served.uri},format=raw`,
      scenario: plan.scenario,
      initramfsPath: initrd,
      timeoutMs: plan.timeoutMs,
      onReport: (line) => {
        const now = performance.now() / 1000;
        const begin = /^begin (\S+)$/.exec(line);
        if (begin?.[1] !== undefined) arrived.set(begin[1], now);
        const step = /^step (\S+) (\d+\.\d+) (\d+\.\d+)$/.exec(line);
        if (step?.[1] !== undefined) {
          steps.set(step[1], { guest: Number(step[3]) - Number(step[2]), host: now - (arrived.get(step[1]) ?? NaN) });
        }
      },
    });
    const at = (word: string): number => Number(result.reports.find((line) => line.startsWith(`${word} `))?.split(' ')[1]);
    if (!(at('verified') > 0)) throw new Error(`${tag}: the guest never verified its data`);
    for (const benchCase of plan.cases) {
      const time = steps.get(benchCase.id);
      // A step under the clock's 10 ms resolution has no meaningful rate: the sizes are too small.
      if (time === undefined || !(time.guest > 0)) throw new Error(`${tag}: no usable time for step ${benchCase.id}`);
    }
    const peakRssMiB = peakRss(served.pid);
    const exit = await served.stop();
    if (exit.code !== 0) {
      throw new Error(`${server} exited ${exit.code ?? exit.signal} on SIGTERM after ${tag}: ${served.stderr().trim().split('\n').at(-1) ?? ''}`);
    }
    const lastStep = Number(result.reports.filter((line) => line.startsWith('step ')).at(-1)?.split(' ')[3]);
    return { steps, peakRssMiB, setupSeconds: at('ready'), checkSeconds: at('verified') - lastStep };
  } finally {
    await served?.kill();
    for (const path of [top, socket, initrd]) rmSync(path, { force: true });
  }
}

/** VmHWM of a live process, in MiB (0 if it is gone). */
function peakRss(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
