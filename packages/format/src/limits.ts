/**
 * Constants of the format and the limits QEMU enforces when it opens an image (block/qcow2.h). We enforce the
 * same ones so that a lying header cannot make us allocate more than QEMU would.
 */
export const QCOW_MAGIC = 0x514649fb;

export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 entries need 32 subclusters of at least 512 bytes. */
export const MIN_EXTENDED_L2_CLUSTER_BITS = 14;

export const V2_HEADER_LENGTH = 72;
export const V3_MIN_HEADER_LENGTH = 104;
/** What QEMU writes for v3: 104 plus the compression type byte, padded to 8. */
export const V3_DEFAULT_HEADER_LENGTH = 112;

export const MAX_BACKING_FILE_NAME = 1023;
export const MAX_L1_TABLE_BYTES = 32 * 1024 * 1024;
export const MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
export const MAX_REFCOUNT_ORDER = 6;
export const MAX_SNAPSHOTS = 65536;
export const MAX_SNAPSHOT_EXTRA_DATA = 1024;
export const MAX_SNAPSHOT_TABLE_BYTES = 1024 * MAX_SNAPSHOTS;
export const MAX_BITMAPS = 65535;
export const MAX_BITMAP_DIRECTORY_BYTES = 1024 * MAX_BITMAPS;
export const MAX_BITMAP_NAME = 1023;

/**
 * How much metadata an open may load, per image. QEMU's own limits bound a hostile header to what QEMU would
 * allocate; an untrusted image (see UNTRUSTED_LIMITS) gets tighter ones, so a whole chain fits a small budget.
 */
export interface MetadataLimits {
  /** Bytes of an L1 table (the active one and each snapshot's). */
  readonly l1TableBytes: number;
  readonly refcountTableBytes: number;
  readonly snapshots: number;
  /** Bytes of the snapshot table (entries carry names up to 64 KiB each). */
  readonly snapshotTableBytes: number;
  readonly bitmaps: number;
  /** Bytes of the persistent bitmap directory. */
  readonly bitmapDirectoryBytes: number;
}

/** QEMU's limits (block/qcow2.h): what every open enforces. */
export const QEMU_LIMITS: MetadataLimits = {
  l1TableBytes: MAX_L1_TABLE_BYTES,
  refcountTableBytes: MAX_REFCOUNT_TABLE_BYTES,
  snapshots: MAX_SNAPSHOTS,
  snapshotTableBytes: MAX_SNAPSHOT_TABLE_BYTES,
  bitmaps: MAX_BITMAPS,
  bitmapDirectoryBytes: MAX_BITMAP_DIRECTORY_BYTES,
};

/**
 * Limits for images from people one does not trust (`--untrusted`): at most 4 MiB of L1 (a 256 TiB disk at 64 KiB
 * clusters, 16 GiB at 512-byte ones), 1 MiB of refcount table, 1024 snapshots in 1 MiB, 64 bitmaps. Images
 * qemu-img makes for ordinary disks stay far inside them.
 */
export const UNTRUSTED_LIMITS: MetadataLimits = {
  l1TableBytes: 4 * 1024 * 1024,
  refcountTableBytes: 1024 * 1024,
  snapshots: 1024,
  snapshotTableBytes: 1024 * 1024,
  bitmaps: 64,
  bitmapDirectoryBytes: 64 * 1024,
};

/** Subclusters per cluster with extended L2 entries. */
export const SUBCLUSTERS_PER_CLUSTER = 32;

/** Header extension types (spec: "Header extensions"). */
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** incompatible_features bits. */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTENDED_L2 = 1n << 4n;
export const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;

/** compatible_features bits. */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** autoclear_features bits. */
export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
export const AUTOCLEAR_KNOWN = AUTOCLEAR_BITMAPS | AUTOCLEAR_DATA_FILE_RAW;

export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;
export type CompressionType = 'zlib' | 'zstd';
