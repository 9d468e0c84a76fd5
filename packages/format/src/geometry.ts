import { INCOMPAT_DATA_FILE, INCOMPAT_EXTENDED_L2, SUBCLUSTERS_PER_CLUSTER } from './limits.js';
import type { QcowHeader } from './header.js';

/** Sizes derived from the header, computed once per image so the hot path never recomputes them. */
export interface Geometry {
  clusterBits: number;
  clusterSize: number;
  extendedL2: boolean;
  /** Bytes per L2 entry: 8, or 16 with extended L2 (entry + subcluster bitmap). */
  l2EntryBytes: number;
  /** Entries per L2 table (one cluster). */
  l2Entries: number;
  /** Guest bytes one L2 table maps (what one L1 entry covers). */
  l2Coverage: number;
  subclusterSize: number;
  refcountBits: number;
  /** Refcount entries per refcount block (one cluster). */
  refcountBlockEntries: number;
  /** Guest clusters live in an external data file at their guest offset. */
  externalDataFile: boolean;
}

export function geometryOf(header: QcowHeader): Geometry {
  const clusterSize = 2 ** header.clusterBits;
  const extendedL2 = (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n;
  const l2EntryBytes = extendedL2 ? 16 : 8;
  const l2Entries = clusterSize / l2EntryBytes;
  const refcountBits = 2 ** header.refcountOrder;
  return {
    clusterBits: header.clusterBits,
    clusterSize,
    extendedL2,
    l2EntryBytes,
    l2Entries,
    l2Coverage: l2Entries * clusterSize,
    subclusterSize: extendedL2 ? clusterSize / SUBCLUSTERS_PER_CLUSTER : clusterSize,
    refcountBits,
    refcountBlockEntries: (clusterSize * 8) / refcountBits,
    externalDataFile: (header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n,
  };
}

/** L1 entries needed to map `size` guest bytes. */
export function l1EntriesFor(size: number, geometry: Geometry): number {
  return Math.ceil(size / geometry.l2Coverage);
}
