import type { BlockFile } from '@q/raw';
import { repairFlags, type CheckCounts, type CheckLog, type RepairMode } from './check-result.js';
import { checkPass } from './check-pass.js';
import { readImageLayout, type ImageLayout } from './image-layout.js';

export interface CheckOptions {
  /** Repair leaks (`'leaks'`) or everything that can be repaired (`'all'`); the file must be writable. */
  repair?: RepairMode;
  /** The name reports carry (qemu-img prints the file name as given); default: the file's own name. */
  name?: string;
  /** Receives each diagnostic line as it is found; without it the lines are collected in the report. */
  onMessage?: CheckLog;
}

/** The outcome of `qemu-img check`: the counts of the last pass, plus what a repair pass fixed. */
export interface CheckReport extends CheckCounts {
  filename: string;
  format: 'qcow2';
  /**
   * Present when a repair pass fixed something: what it fixed. The other counts then come from a second,
   * read-only pass over the repaired image ("Double checking the fixed image now..."), as in qemu-img.
   */
  repaired?: { leaks: number; corruptions: number };
  /** Diagnostic lines (qemu-img's stderr), when no `onMessage` was given. */
  messages: string[];
}

/**
 * Checks (and optionally repairs) a qcow2 image the way `qemu-img check` does: same classification, same
 * diagnostics, same statistics. Throws a DiskError when the image cannot be opened as QEMU would refuse it, or
 * when the check cannot complete (qemu-img: "Check failed", exit 1).
 */
export async function checkImage(file: BlockFile, options: CheckOptions = {}): Promise<CheckReport> {
  return checkLayout(await readImageLayout(file), options);
}

/** `checkImage` for an image whose layout was already read (lets callers tell open errors from check errors). */
export async function checkLayout(layout: ImageLayout, options: CheckOptions = {}): Promise<CheckReport> {
  const messages: string[] = [];
  const log: CheckLog = options.onMessage ?? ((line) => void messages.push(line));
  // QEMU reports an image corrupt once per opening; qemu-img's second pass runs on the same opening.
  const corruption = { signaled: false };
  const first = await checkPass(layout, repairFlags(options.repair), log, corruption);
  const base = { filename: options.name ?? layout.file.name, format: 'qcow2' as const, messages };
  if (first.corruptionsFixed === 0 && first.leaksFixed === 0) return { ...first, ...base };
  // Repairs changed the image (possibly its header): read it afresh and check it again without repairing.
  const second = await checkPass(await readImageLayout(layout.file), repairFlags(undefined), log, corruption);
  return {
    ...second,
    ...base,
    corruptionsFixed: first.corruptionsFixed,
    leaksFixed: first.leaksFixed,
    repaired: { leaks: first.leaksFixed, corruptions: first.corruptionsFixed },
  };
}
