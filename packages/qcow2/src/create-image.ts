import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_ZSTD,
  encodeFeatureNameTable,
  encodeHeaderCluster,
  encodeRefcountTable,
  encodeString,
  EXT_BACKING_FORMAT,
  EXT_DATA_FILE,
  EXT_FEATURE_NAMES,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTENDED_L2,
  MAX_BACKING_FILE_NAME,
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  setRefcount,
  V2_HEADER_LENGTH,
  V3_DEFAULT_HEADER_LENGTH,
  type CompressionType,
  type FeatureName,
  type HeaderExtension,
  type QcowHeader,
} from '@q/format';
import { DiskError, type BlockFile } from '@q/raw';

/** What `qemu-img create -f qcow2 -o ...` can ask for. */
export interface CreateOptions {
  /** Virtual size in bytes (rounded up to 512). */
  size: number;
  /** 2 = compat 0.10, 3 = compat 1.1 (the default). */
  version: 2 | 3;
  clusterBits: number;
  refcountOrder: number;
  lazyRefcounts: boolean;
  extendedL2: boolean;
  compressionType: CompressionType;
  backingFile?: string;
  backingFormat?: string;
  dataFile?: string;
  dataFileRaw?: boolean;
}

/** qemu-img's defaults: v3, 64 KiB clusters, 16-bit refcounts, zlib, nothing else. */
export function defaultCreateOptions(size: number): CreateOptions {
  return { size, version: 3, clusterBits: 16, refcountOrder: 4, lazyRefcounts: false, extendedL2: false, compressionType: 'zlib' };
}

/** The combinations QEMU refuses, with QEMU's reasons. */
export function checkCreateOptions(o: CreateOptions): void {
  const fail = (message: string): never => {
    throw new DiskError('E_INVALID', message);
  };
  if (o.clusterBits < MIN_CLUSTER_BITS || o.clusterBits > MAX_CLUSTER_BITS) {
    fail('Cluster size must be a power of two between 512 and 2048k');
  }
  if (o.refcountOrder < 0 || o.refcountOrder > 6) fail('Refcount width must be a power of two and may not exceed 64 bits');
  if (o.version === 2) {
    if (o.refcountOrder !== 4) fail('Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)');
    if (o.lazyRefcounts) fail('Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)');
    if (o.extendedL2) fail('Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)');
    if (o.compressionType !== 'zlib') fail('Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)');
    if (o.dataFile !== undefined) fail('External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)');
  }
  if (o.extendedL2 && o.clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) fail('Extended L2 entries are only supported with cluster sizes of at least 16384 bytes');
  if (o.dataFileRaw === true && o.dataFile === undefined) fail('data-file-raw requires data-file');
  if (o.dataFileRaw === true && o.backingFile !== undefined) fail('Backing file and data-file-raw cannot be used at the same time');
  if (o.backingFile !== undefined && encodeString(o.backingFile).length > MAX_BACKING_FILE_NAME) fail('Backing file name too long');
  if (o.backingFormat !== undefined && o.backingFile === undefined) fail('Backing format cannot be used without backing file');
  // QEMU caps the L1 table at 32 MiB (4 Mi entries), each entry covering one L2 table's worth of clusters.
  const l2Coverage = 2 ** o.clusterBits * (2 ** o.clusterBits / (o.extendedL2 ? 16 : 8));
  if (Math.ceil(o.size / l2Coverage) > MAX_L1_ENTRIES) fail("The image size is too large for file format 'qcow2' (try using a larger cluster size)");
}

const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;

/** QEMU's feature name table: every feature it knows, so older readers can name what they do not support. */
export const FEATURE_NAMES: FeatureName[] = [
  { kind: 'incompatible', bit: 0, name: 'dirty bit' },
  { kind: 'incompatible', bit: 1, name: 'corrupt bit' },
  { kind: 'incompatible', bit: 2, name: 'external data file' },
  { kind: 'incompatible', bit: 3, name: 'compression type' },
  { kind: 'incompatible', bit: 4, name: 'extended L2 entries' },
  { kind: 'compatible', bit: 0, name: 'lazy refcounts' },
  { kind: 'autoclear', bit: 0, name: 'bitmaps' },
  { kind: 'autoclear', bit: 1, name: 'raw external data' },
];

/** Where the tables of a new image lie: what its header points at. */
export interface HeaderLayout {
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  /** Virtual size recorded (0 while an empty image waits to be grown). */
  size: number;
}

/**
 * Cluster 0 of a new image: the header with QEMU's feature bits, extensions (backing format, data file, feature
 * name table) and backing file name for `o`, pointing at the tables of `layout`.
 */
export function newImageHeaderCluster(o: CreateOptions, layout: HeaderLayout): Uint8Array {
  const clusterSize = 2 ** o.clusterBits;
  const header: QcowHeader = {
    version: o.version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: o.clusterBits,
    size: layout.size,
    cryptMethod: 0,
    l1Size: layout.l1Size,
    l1TableOffset: layout.l1TableOffset,
    refcountTableOffset: layout.refcountTableOffset,
    refcountTableClusters: layout.refcountTableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures:
      (o.dataFile !== undefined ? INCOMPAT_DATA_FILE : 0n) |
      (o.compressionType === 'zstd' ? INCOMPAT_COMPRESSION : 0n) |
      (o.extendedL2 ? INCOMPAT_EXTENDED_L2 : 0n),
    compatibleFeatures: o.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
    autoclearFeatures: o.dataFileRaw === true ? AUTOCLEAR_DATA_FILE_RAW : 0n,
    refcountOrder: o.refcountOrder,
    headerLength: o.version === 3 ? V3_DEFAULT_HEADER_LENGTH : V2_HEADER_LENGTH,
    compressionType: o.compressionType === 'zstd' ? COMPRESSION_ZSTD : 0,
    trailing: new Uint8Array(o.version === 3 ? V3_DEFAULT_HEADER_LENGTH - 105 : 0),
  };
  const extensions: HeaderExtension[] = [];
  if (o.backingFormat !== undefined) extensions.push({ type: EXT_BACKING_FORMAT, data: encodeString(o.backingFormat) });
  if (o.dataFile !== undefined) extensions.push({ type: EXT_DATA_FILE, data: encodeString(o.dataFile) });
  // QEMU leaves the feature table out of small (<= 4 KiB) header clusters.
  if (o.version === 3 && clusterSize > 4096) extensions.push({ type: EXT_FEATURE_NAMES, data: encodeFeatureNameTable(FEATURE_NAMES) });
  return encodeHeaderCluster({ header, extensions, backingFileName: o.backingFile }, clusterSize).bytes;
}

/**
 * Writes an empty image in QEMU's layout: the header (with its extensions and backing file name) in cluster 0,
 * the refcount table in cluster 1, its first refcount block in cluster 2, no L1 table yet (size 0). The engine
 * then grows it to its size, which puts the L1 table in cluster 3 as QEMU does.
 */
export async function writeEmptyImage(file: BlockFile, o: CreateOptions): Promise<void> {
  checkCreateOptions(o);
  const clusterSize = 2 ** o.clusterBits;
  const cluster0 = newImageHeaderCluster(o, { l1Size: 0, l1TableOffset: 0, refcountTableOffset: clusterSize, refcountTableClusters: 1, size: 0 });
  const table = encodeRefcountTable([2 * clusterSize], clusterSize, 1);
  const block = new Uint8Array(clusterSize);
  for (let cluster = 0; cluster < 3; cluster++) setRefcount(block, cluster, o.refcountOrder, 1);

  await file.truncate(0);
  await file.write(cluster0, 0);
  await file.write(table, clusterSize);
  await file.write(block, 2 * clusterSize);
  await file.flush();
}
