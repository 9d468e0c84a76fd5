/**
 * What `pnpm bench:vm` was asked for. tools/bench/vm-bench.mjs parses the command line and passes the result here
 * as JSON in QCOW_VM_BENCH: vitest, which runs this code, refuses command-line options it does not know.
 */
export interface BenchOptions {
  /** Boots per server; the table shows medians. */
  runs: number;
  /** Where the images go (a disk-backed directory by default: where users keep images). */
  dir: string;
  /** The `qcow serve` variants measured against qemu-nbd: `qcow` (default flags) or `qcow:MODE` (`--aio=MODE`). */
  servers: string[];
  /** Small sizes: a smoke run of the whole path, not a measurement. */
  quick: boolean;
  /** Keep the work directory (base image, last overlays) instead of deleting it. */
  keep: boolean;
  /** The command line as the user typed it, for the table's heading. */
  command: string;
  /** The file the launcher reads back: `{ table }` or `{ error }`. */
  out: string;
}

/**
 * How much each case moves. The full sizes make each timed step last a second or more under TCG (the guest's clock
 * steps by 10 ms); the 4 KiB count must be a multiple of 256 (read back in MiB), the 1 MiB writes a multiple of the
 * guest's source buffer (bench-cases.ts).
 */
export interface BenchSizes {
  /** 1 MiB direct writes: MiB written. */
  write1mMiB: number;
  /** 4 KiB direct writes (new, then overwrite) and reads: operations each. */
  ops4k: number;
  /** 1 MiB direct reads of data only the base holds: MiB read. */
  backingMiB: number;
  /** Small files: 4 KiB files created before one sync. */
  smallFiles: number;
}

const FULL: BenchSizes = { write1mMiB: 512, ops4k: 16384, backingMiB: 1024, smallFiles: 1000 };
const QUICK: BenchSizes = { write1mMiB: 16, ops4k: 1024, backingMiB: 16, smallFiles: 50 };

export function benchSizes(options: Pick<BenchOptions, 'quick'>): BenchSizes {
  return options.quick ? QUICK : FULL;
}

/** The options from QCOW_VM_BENCH; a missing or malformed value means the file was not run by the launcher. */
export function benchOptions(): BenchOptions {
  const text = process.env['QCOW_VM_BENCH'];
  if (text === undefined) throw new Error('QCOW_VM_BENCH is not set: run the VM benchmark with `pnpm bench:vm` (tools/bench/vm-bench.mjs)');
  const options = JSON.parse(text) as Partial<BenchOptions>;
  const servers = options.servers ?? ['qcow'];
  for (const server of servers) {
    if (!/^qcow(:[a-z]+)?$/.test(server)) throw new Error(`--servers: ${server} is not qcow or qcow:MODE`);
  }
  if (!Number.isInteger(options.runs) || (options.runs as number) < 1) throw new Error(`--runs must be a positive integer`);
  if (typeof options.dir !== 'string' || typeof options.out !== 'string') throw new Error('QCOW_VM_BENCH needs dir and out');
  return {
    runs: options.runs as number,
    dir: options.dir,
    servers,
    quick: options.quick === true,
    keep: options.keep === true,
    command: options.command ?? 'pnpm bench:vm',
    out: options.out,
  };
}
