import { DiskError } from '@q/raw';
import {
  HEADER_V2_FIELDS_END,
  INCOMPAT_KNOWN,
  MAX_L1_TABLE_BYTES,
  MAX_REFCOUNT_TABLE_BYTES,
  readHeaderField,
  type FeatureName,
  type QcowHeader,
} from '@q/format';

/**
 * The checks QEMU makes on the fixed tables when it opens an image, worded as QEMU words them, so that a
 * check refused at open reads the same from both programs ("Could not open 'x': Active L1 table offset
 * invalid"). Runs on the raw header bytes, before the general header decoder (whose wording differs).
 */
export function checkTablePlacement(cluster0: Uint8Array, clusterSize: number): void {
  if (cluster0.length < HEADER_V2_FIELDS_END) return;
  const field = (name: 'refcountTableClusters' | 'l1Size'): number => readHeaderField(cluster0, name)!;
  const wide = (name: 'refcountTableOffset' | 'l1TableOffset'): bigint => readHeaderField(cluster0, name)!;
  if (field('refcountTableClusters') === 0) throw new DiskError('E_CORRUPT', 'Image does not contain a reference count table');
  validateTable(wide('refcountTableOffset'), field('refcountTableClusters'), clusterSize, MAX_REFCOUNT_TABLE_BYTES, 'Reference count table', clusterSize);
  // (The snapshot table is left to the check itself, which reports its problems instead of refusing the image.)
  validateTable(wide('l1TableOffset'), field('l1Size'), 8, MAX_L1_TABLE_BYTES, 'Active L1 table', clusterSize);
}

const INT64_MAX = (1n << 63n) - 1n;

function validateTable(offset: bigint, entries: number, entryBytes: number, maxBytes: number, name: string, clusterSize: number): void {
  if (entries > Math.floor(maxBytes / entryBytes)) throw new DiskError('E_TOO_LARGE', `${name} too large`);
  if (INT64_MAX - BigInt(entries * entryBytes) < offset || offset % BigInt(clusterSize) !== 0n) {
    throw new DiskError('E_CORRUPT', `${name} offset invalid`);
  }
}

/**
 * Refuses unknown incompatible features the way QEMU reports them: the names the image's feature table gives,
 * in table order, then the remaining bits as one hex mask ("Unknown incompatible feature: 100000").
 */
export function checkFeatures(header: QcowHeader, featureNames: readonly FeatureName[]): void {
  let unknown = header.incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknown === 0n) return;
  const parts: string[] = [];
  for (const feature of featureNames) {
    const bit = 1n << BigInt(feature.bit);
    if (feature.kind !== 'incompatible' || (unknown & bit) === 0n) continue;
    parts.push(feature.name.slice(0, 46));
    unknown &= ~bit;
  }
  if (unknown !== 0n) parts.push(`Unknown incompatible feature: ${unknown.toString(16)}`);
  throw new DiskError('E_UNSUPPORTED', `Unsupported qcow2 feature(s): ${parts.join(', ')}`);
}
