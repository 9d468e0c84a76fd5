import {
  COMPAT_LAZY_REFCOUNTS,
  encodeFeatureNameTable,
  encodeString,
  EXT_BITMAPS,
  EXT_DATA_FILE,
  EXT_FEATURE_NAMES,
  V2_HEADER_LENGTH,
  V3_DEFAULT_HEADER_LENGTH,
  type HeaderExtension,
  type QcowHeader,
} from '@q/format';
import type { AsyncLock } from './async-lock.js';
import { FEATURE_NAMES } from './create-image.js';
import type { HeaderState } from './header-state.js';
import type { WritePath } from './write-path.js';

/** What `qemu-img amend` can change in place (the refcount width is refcount-width.ts). */
export interface AmendChange {
  /** 2 = compat 0.10 (downgrade), 3 = compat 1.1 (upgrade). */
  version?: 2 | 3;
  lazyRefcounts?: boolean;
  /** A new backing file name (null: none) and its format. */
  backingFile?: string | null;
  backingFormat?: string;
  /** A new name for the external data file the image already uses. */
  dataFile?: string;
}

export interface AmendParts {
  clusterSize: number;
  header: HeaderState;
  writePath: WritePath;
  lock: AsyncLock;
  /** Turns the zero clusters of every tree (active, snapshots) into what v2 can say: zero-cluster-expansion.ts. */
  expandZeroClusters(): Promise<void>;
}

/**
 * Changes header-level options of an open, writable image. A downgrade to v2 first turns every zero cluster, the
 * active state's and every snapshot's, into what v2 can say (v2 has no zero flag; see expandZeroClusters): those
 * changes are durable before the header says v2.
 * Each header change is one write of cluster 0 (HeaderState.rewriteCluster), synced.
 */
export async function amendImage(parts: AmendParts, change: AmendChange): Promise<void> {
  const { header } = parts;
  if (change.version === 2 && header.header.version === 3) await parts.expandZeroClusters();
  await parts.writePath.flush();
  await parts.lock.run(async () => {
    const next: Partial<QcowHeader> = {};
    let extensions: HeaderExtension[] = [...header.extensions];
    let compatible = header.header.compatibleFeatures;
    if (change.lazyRefcounts !== undefined) compatible = change.lazyRefcounts ? compatible | COMPAT_LAZY_REFCOUNTS : compatible & ~COMPAT_LAZY_REFCOUNTS;
    if (change.version === 2 && header.header.version === 3) {
      // What v2 cannot hold goes: feature bits, the fields past byte 72, the feature table and bitmaps.
      Object.assign(next, { version: 2, headerLength: V2_HEADER_LENGTH, incompatibleFeatures: 0n, autoclearFeatures: 0n, refcountOrder: 4, compressionType: 0, trailing: new Uint8Array(0) });
      compatible = 0n;
      extensions = extensions.filter((e) => e.type !== EXT_FEATURE_NAMES && e.type !== EXT_BITMAPS);
    } else if (change.version === 3 && header.header.version === 2) {
      Object.assign(next, { version: 3, headerLength: V3_DEFAULT_HEADER_LENGTH, compressionType: 0, trailing: new Uint8Array(V3_DEFAULT_HEADER_LENGTH - 105) });
      // As QEMU: an upgraded header gains the feature name table (left out of clusters of 4 KiB or less).
      if (parts.clusterSize > 4096 && !extensions.some((e) => e.type === EXT_FEATURE_NAMES)) {
        extensions.push({ type: EXT_FEATURE_NAMES, data: encodeFeatureNameTable(FEATURE_NAMES) });
      }
    }
    next.compatibleFeatures = compatible;
    if (change.dataFile !== undefined) {
      extensions = extensions.map((e) => (e.type === EXT_DATA_FILE ? { type: EXT_DATA_FILE, data: encodeString(change.dataFile!) } : e));
    }
    const unchanged = Object.entries(next).every(([key, value]) => header.header[key as keyof QcowHeader] === value) && change.dataFile === undefined;
    if (!unchanged || change.version !== undefined) await header.rewriteCluster({ header: next, extensions });
    if (change.backingFile !== undefined || change.backingFormat !== undefined) {
      const name = change.backingFile === undefined ? header.backingFileName : (change.backingFile ?? undefined);
      await header.setBackingFile(name, change.backingFormat);
    }
  });
}
