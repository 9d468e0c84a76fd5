import { spawn } from 'node:child_process';
import { requireTool } from '@q/test-support';
import { bootInitramfs, type GuestImage } from './guest/guest-image.js';
import { REPORT_PREFIX } from './guest/init-script.js';

export interface BootOptions {
  /** Names the boot in its timing line and errors. */
  name: string;
  /** The disk's `-drive` options after `if=virtio,`: `file=...,format=...` and any more. */
  drive: string;
  /** The guest's /scenario.sh (busybox sh, run with -e). */
  scenario: string;
  /** Where this boot's initramfs goes (a scratch file). */
  initramfsPath: string;
  /** The longest the guest may run before it is killed (generous: TCG on a busy CI machine). */
  timeoutMs?: number;
  /**
   * Called with each report line as it arrives (after the prefix), to act mid-boot. Returning 'power-off' pulls
   * the plug: QEMU is SIGKILLed at once and the boot ends without a verdict (`cut` set), as after a host crash.
   */
  onReport?: (line: string) => void | 'power-off';
}

export interface BootResult {
  /** The scenario's report lines, prefix removed, `up` and `end` included. */
  reports: string[];
  /** The scenario's exit status from `end` (null when the guest never said). */
  status: number | null;
  /** Whether onReport pulled the plug. */
  cut: boolean;
  serial: string;
  seconds: number;
}

/**
 * Boots the guest under TCG (no KVM on CI machines) with one vCPU, 512 MiB and no network device, the disk as a
 * virtio-blk device, until it powers itself off. -no-reboot turns a kernel panic (panic=-1 reboots at once) or a
 * triple fault into QEMU exiting, so a broken guest ends quickly; a hung one is SIGKILLed at the deadline. Every
 * failure carries the serial log, the only view into the guest.
 */
export async function boot(guest: GuestImage, options: BootOptions): Promise<BootResult> {
  requireTool('qemu-system-x86_64');
  const initrd = bootInitramfs(guest, options.scenario, options.initramfsPath);
  const args = [
    ...['-accel', 'tcg', '-smp', '1', '-m', '512M'],
    ...['-nographic', '-no-reboot', '-nic', 'none'],
    ...['-kernel', guest.vmlinuz, '-initrd', initrd],
    ...['-append', 'console=ttyS0 quiet panic=-1 rdinit=/init'],
    ...['-drive', `if=virtio,${options.drive}`],
  ];
  const started = process.hrtime.bigint();
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let serial = '';
  let pending = '';
  const reports: string[] = [];
  let cut = false;
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    serial += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      // The serial line discipline ends lines with CRLF; a kernel message may share a line with a report.
      const at = line.indexOf(REPORT_PREFIX);
      if (at < 0) continue;
      const report = line.slice(at + REPORT_PREFIX.length).replace(/\r$/, '');
      reports.push(report);
      if (!cut && options.onReport?.(report) === 'power-off') {
        cut = true;
        child.kill('SIGKILL');
      }
    }
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timeoutMs = options.timeoutMs ?? 240_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const end = reports.filter((line) => line.startsWith('end ')).at(-1);
  const status = end === undefined ? null : Number(end.split(' ')[1]);
  const describe = `boot ${options.name}: ${timedOut ? `killed after ${timeoutMs / 1000} s` : `qemu exited ${exit.code ?? exit.signal}`}`;
  if (timedOut || (!cut && (exit.code !== 0 || status !== 0))) {
    throw new Error(`${describe}, guest status ${status ?? 'never reported'}\n--- qemu stderr ---\n${stderr}\n--- serial log ---\n${serial}`);
  }
  console.log(`vm boot ${options.name}: ${seconds.toFixed(1)} s${cut ? ' (plug pulled)' : ''}`);
  return { reports, status, serial, seconds, cut };
}
