/**
 * What one check pass finds, field for field what QEMU's check accounts (and what `qemu-img check` prints):
 * counts of problems, of repairs, and the allocation statistics of the active L1 table.
 */
export interface CheckCounts {
  /** Problems that may lose data or let later writes lose it (refcount too low, bad entries, COPIED mismatch). */
  corruptions: number;
  /** Clusters whose refcount is higher than the references found: wasted space only. */
  leaks: number;
  /** Things that stopped the check from examining part of the image (unreadable refcount blocks). */
  checkErrors: number;
  corruptionsFixed: number;
  leaksFixed: number;
  /** End of the last cluster that is referenced or has a refcount: where a compacted file would end. */
  imageEndOffset: number;
  /** Clusters of the virtual disk. */
  totalClusters: number;
  /** Guest clusters the active L1 table maps to host clusters (data, preallocated zero, compressed). */
  allocatedClusters: number;
  /** Allocated clusters not contiguous with the previous one in the same L2 table (and every compressed one). */
  fragmentedClusters: number;
  compressedClusters: number;
}

export function emptyCounts(): CheckCounts {
  return {
    corruptions: 0,
    leaks: 0,
    checkErrors: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    imageEndOffset: 0,
    totalClusters: 0,
    allocatedClusters: 0,
    fragmentedClusters: 0,
    compressedClusters: 0,
  };
}

/** Which repairs are allowed: `qemu-img check -r leaks` or `-r all` (which includes leaks). */
export type RepairMode = 'leaks' | 'all';

export interface RepairFlags {
  leaks: boolean;
  errors: boolean;
}

export function repairFlags(mode: RepairMode | undefined): RepairFlags {
  return { leaks: mode !== undefined, errors: mode === 'all' };
}

/**
 * Receives each diagnostic line (without newline) as the check finds it; `qemu-img check` prints these on stderr.
 * Kind `'report'` marks lines QEMU prints as error reports, prefixed with the program name ("qemu-img: ...").
 */
export type CheckLog = (line: string, kind?: 'report') => void;
