import { caseValue, type BenchCase } from './bench-cases.js';
import type { BootMeasurement } from './measured-boot.js';

export interface TableInput {
  cases: readonly BenchCase[];
  /** The `qcow serve` variants; qemu-nbd is always the reference. */
  variants: readonly string[];
  /** Every boot's measurement, by server (`qemu-nbd` and each variant). */
  results: ReadonlyMap<string, readonly BootMeasurement[]>;
  /** The lines above the table: date, versions, command, how it was timed. */
  heading: string;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

function format(unit: BenchCase['unit'], value: number): string {
  if (unit === 'IOPS') return String(Math.round(value));
  if (unit === 's') return value.toFixed(2);
  return value >= 100 ? String(Math.round(value)) : value.toFixed(1);
}

/** One server's values for a case, one per boot, from the guest's step times. */
function values(results: TableInput['results'], server: string, benchCase: BenchCase): number[] {
  return (results.get(server) ?? []).map((boot) => caseValue(benchCase, boot.steps.get(benchCase.id)?.guest ?? NaN));
}

/**
 * The report: one markdown row per case (and per variant when several are measured), each server's median over
 * its boots and the ratio of medians, turned so that above 1 always means qcow serve was faster (for times,
 * qemu-nbd's over qcow's). Under it the notes that say how far to trust it: run-to-run spread, peak RSS, and how
 * well the guest's clock agrees with the host's view of the same steps.
 */
export function benchTable(input: TableInput): string {
  const { cases, variants, results } = input;
  const rows: string[] = [];
  for (const benchCase of cases) {
    const reference = median(values(results, 'qemu-nbd', benchCase));
    for (const variant of variants) {
      const ours = median(values(results, variant, benchCase));
      const ratio = benchCase.unit === 's' ? reference / ours : ours / reference;
      const label = `${benchCase.label} (${benchCase.unit})${variants.length > 1 ? ` [${variant}]` : ''}`;
      rows.push(`| ${label} | ${format(benchCase.unit, reference)} | ${format(benchCase.unit, ours)} | ${ratio.toFixed(2)}x |`);
    }
  }
  const servers = ['qemu-nbd', ...variants];
  const spread = servers.map((server) => {
    const worst = Math.max(...cases.map((benchCase) => {
      const all = values(results, server, benchCase);
      return Math.max(...all) / Math.min(...all) - 1;
    }));
    return `${server} ${(worst * 100).toFixed(0)}%`;
  });
  const rss = servers.map((server) => `${server} ${Math.max(...(results.get(server) ?? []).map((boot) => boot.peakRssMiB)).toFixed(0)} MiB`);
  let clockGap = 0;
  for (const boots of results.values()) {
    for (const boot of boots) for (const time of boot.steps.values()) clockGap = Math.max(clockGap, Math.abs(time.host - time.guest));
  }
  return [
    input.heading,
    '',
    '| case | qemu-nbd | qcow | ratio (>1: qcow faster) |',
    '|---|--:|--:|--:|',
    ...rows,
    '',
    `Run-to-run spread (largest max/min - 1 over the cases): ${spread.join(', ')}. Peak RSS over the boots: ${rss.join(', ')}.`,
    `Guest-clock step times and the host's (arrival of each step's report lines) differ by at most ${clockGap.toFixed(2)} s.`,
    '',
  ].join('\n');
}
