import { DiskError } from '@q/raw';
import { readU64, readU64Big, view, writeU64 } from './bytes.js';
import { HEADER_FIELDS as F } from './header-fields.js';
import {
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  INCOMPAT_COMPRESSION,
  INCOMPAT_EXTENDED_L2,
  MAX_BACKING_FILE_NAME,
  MAX_CLUSTER_BITS,
  MAX_L1_TABLE_BYTES,
  MAX_REFCOUNT_ORDER,
  MAX_REFCOUNT_TABLE_BYTES,
  MAX_SNAPSHOTS,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  QCOW_MAGIC,
  V2_HEADER_LENGTH,
  V3_MIN_HEADER_LENGTH,
  type CompressionType,
} from './limits.js';

/** Where the bytes past the known fields start (kept as `trailing`). */
const TRAILING_AT = F.compressionType.at + F.compressionType.bytes;

/** The fixed header at offset 0 (spec: "Header"). Offsets are byte offsets in the image file. */
export interface QcowHeader {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  /** Bytes past the fields we know, up to header_length: kept as they are when the header is rewritten. */
  trailing: Uint8Array;
}

/** The compression type's name (the header stores 0 for zlib, 1 for zstd; others are refused on decode). */
export function compressionTypeOf(header: QcowHeader): CompressionType {
  return header.compressionType === COMPRESSION_ZSTD ? 'zstd' : 'zlib';
}

/** Bytes needed to read the fixed fields of any header. */
export const HEADER_PROBE_BYTES = 512;

/** True when `bytes` starts with the qcow2 magic. */
export function hasQcowMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && view(bytes).getUint32(0) === QCOW_MAGIC;
}

/**
 * Decodes and checks the header found at the start of `bytes` (the image's first cluster, or at least the first
 * header_length bytes of it). Checks mirror the ones QEMU makes on open, so what QEMU refuses we refuse, with the
 * same reasons; table contents and file-size checks come later, in the engine.
 */
export function decodeHeader(bytes: Uint8Array): QcowHeader {
  if (bytes.length < V2_HEADER_LENGTH) {
    throw new DiskError('E_BAD_FORMAT', `file too short for a qcow2 header (${bytes.length} bytes)`);
  }
  const v = view(bytes);
  if (v.getUint32(F.magic.at) !== QCOW_MAGIC) throw new DiskError('E_BAD_FORMAT', 'Image is not in qcow2 format');
  const version = v.getUint32(F.version.at);
  if (version !== 2 && version !== 3) {
    throw new DiskError('E_UNSUPPORTED', `Unsupported qcow2 version ${version}`);
  }
  const clusterBits = v.getUint32(F.clusterBits.at);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new DiskError('E_UNSUPPORTED', `Unsupported cluster size: 2^${clusterBits} (must be 2^${MIN_CLUSTER_BITS}..2^${MAX_CLUSTER_BITS})`);
  }
  const clusterSize = 2 ** clusterBits;
  let headerLength = V2_HEADER_LENGTH;
  let refcountOrder = 4;
  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let compressionType = COMPRESSION_ZLIB;
  let trailing = new Uint8Array(0);
  if (version === 3) {
    if (bytes.length < V3_MIN_HEADER_LENGTH) throw new DiskError('E_BAD_FORMAT', 'qcow2 header too short');
    headerLength = v.getUint32(F.headerLength.at);
    if (headerLength < V3_MIN_HEADER_LENGTH) throw new DiskError('E_CORRUPT', `qcow2 header too short (header_length ${headerLength})`);
    if (headerLength > clusterSize) throw new DiskError('E_CORRUPT', `qcow2 header exceeds cluster size (header_length ${headerLength})`);
    if (headerLength > bytes.length) throw new DiskError('E_PAST_EOF', `qcow2 header (header_length ${headerLength}) runs past the end of the file`);
    incompatibleFeatures = readU64Big(v, F.incompatibleFeatures.at);
    compatibleFeatures = readU64Big(v, F.compatibleFeatures.at);
    autoclearFeatures = readU64Big(v, F.autoclearFeatures.at);
    refcountOrder = v.getUint32(F.refcountOrder.at);
    if (headerLength > F.compressionType.at) compressionType = v.getUint8(F.compressionType.at);
    trailing = bytes.slice(Math.min(TRAILING_AT, headerLength), headerLength);
  }
  if (refcountOrder > MAX_REFCOUNT_ORDER) {
    throw new DiskError('E_CORRUPT', `Refcount order ${refcountOrder} is too large (at most ${MAX_REFCOUNT_ORDER})`);
  }
  const header: QcowHeader = {
    version,
    backingFileOffset: readU64(v, F.backingFileOffset.at, 'backing file offset'),
    backingFileSize: v.getUint32(F.backingFileSize.at),
    clusterBits,
    size: readU64(v, F.size.at, 'virtual size'),
    cryptMethod: v.getUint32(F.cryptMethod.at),
    l1Size: v.getUint32(F.l1Size.at),
    l1TableOffset: readU64(v, F.l1TableOffset.at, 'L1 table offset'),
    refcountTableOffset: readU64(v, F.refcountTableOffset.at, 'refcount table offset'),
    refcountTableClusters: v.getUint32(F.refcountTableClusters.at),
    nbSnapshots: v.getUint32(F.nbSnapshots.at),
    snapshotsOffset: readU64(v, F.snapshotsOffset.at, 'snapshot table offset'),
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    headerLength,
    compressionType,
    trailing,
  };
  checkHeaderFields(header);
  return header;
}

function checkHeaderFields(h: QcowHeader): void {
  const clusterSize = 2 ** h.clusterBits;
  if (h.cryptMethod !== 0) {
    const kind = h.cryptMethod === 1 ? 'AES' : h.cryptMethod === 2 ? 'LUKS' : `method ${h.cryptMethod}`;
    throw new DiskError('E_UNSUPPORTED', `encrypted images are not supported (${kind} encryption)`);
  }
  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize > MAX_BACKING_FILE_NAME) {
      throw new DiskError('E_CORRUPT', `Backing file name too long (${h.backingFileSize} bytes, at most ${MAX_BACKING_FILE_NAME})`);
    }
    if (h.backingFileOffset + h.backingFileSize > clusterSize) {
      throw new DiskError('E_CORRUPT', `Invalid backing file offset ${h.backingFileOffset}: the name must lie in the first cluster`);
    }
  }
  if ((h.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n) {
    if (h.compressionType === COMPRESSION_ZLIB) {
      throw new DiskError('E_CORRUPT', 'Compression type incompatible feature bit is set but the compression type is zlib');
    }
  } else if (h.compressionType !== COMPRESSION_ZLIB) {
    throw new DiskError('E_CORRUPT', `Compression type ${h.compressionType} is set but its incompatible feature bit is not`);
  }
  if (h.compressionType !== COMPRESSION_ZLIB && h.compressionType !== COMPRESSION_ZSTD) {
    throw new DiskError('E_UNSUPPORTED', `Unknown compression type ${h.compressionType}`);
  }
  if ((h.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n && h.clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    throw new DiskError('E_CORRUPT', `Extended L2 entries need clusters of at least 16 KiB (cluster size is ${clusterSize})`);
  }
  if (h.l1Size * 8 > MAX_L1_TABLE_BYTES) {
    throw new DiskError('E_TOO_LARGE', `Active L1 table too large (${h.l1Size} entries, at most ${MAX_L1_TABLE_BYTES / 8})`);
  }
  checkAligned(h.l1TableOffset, clusterSize, 'L1 table offset', h.l1Size > 0);
  if (h.refcountTableClusters === 0) throw new DiskError('E_CORRUPT', 'Image does not contain a reference count table');
  if (h.refcountTableClusters * clusterSize > MAX_REFCOUNT_TABLE_BYTES) {
    throw new DiskError('E_TOO_LARGE', `Reference count table too large (${h.refcountTableClusters} clusters)`);
  }
  checkAligned(h.refcountTableOffset, clusterSize, 'reference count table offset', true);
  if (h.nbSnapshots > MAX_SNAPSHOTS) {
    throw new DiskError('E_TOO_LARGE', `Too many snapshots (${h.nbSnapshots}, at most ${MAX_SNAPSHOTS})`);
  }
  checkAligned(h.snapshotsOffset, clusterSize, 'snapshot table offset', h.nbSnapshots > 0);
}

function checkAligned(offset: number, clusterSize: number, what: string, mustBeNonZero: boolean): void {
  if (offset % clusterSize !== 0) throw new DiskError('E_CORRUPT', `Invalid ${what} 0x${offset.toString(16)}: not cluster aligned`, { offset });
  if (mustBeNonZero && offset === 0) throw new DiskError('E_CORRUPT', `Invalid ${what} 0: it points into the header`, { offset });
}

/** Serialises a header (header_length bytes; 72 for v2). Unknown trailing bytes are written back as read. */
export function encodeHeader(h: QcowHeader): Uint8Array {
  const bytes = new Uint8Array(h.headerLength);
  const v = view(bytes);
  v.setUint32(F.magic.at, QCOW_MAGIC);
  v.setUint32(F.version.at, h.version);
  writeU64(v, F.backingFileOffset.at, h.backingFileOffset);
  v.setUint32(F.backingFileSize.at, h.backingFileSize);
  v.setUint32(F.clusterBits.at, h.clusterBits);
  writeU64(v, F.size.at, h.size);
  v.setUint32(F.cryptMethod.at, h.cryptMethod);
  v.setUint32(F.l1Size.at, h.l1Size);
  writeU64(v, F.l1TableOffset.at, h.l1TableOffset);
  writeU64(v, F.refcountTableOffset.at, h.refcountTableOffset);
  v.setUint32(F.refcountTableClusters.at, h.refcountTableClusters);
  v.setUint32(F.nbSnapshots.at, h.nbSnapshots);
  writeU64(v, F.snapshotsOffset.at, h.snapshotsOffset);
  if (h.version === 3) {
    v.setBigUint64(F.incompatibleFeatures.at, h.incompatibleFeatures);
    v.setBigUint64(F.compatibleFeatures.at, h.compatibleFeatures);
    v.setBigUint64(F.autoclearFeatures.at, h.autoclearFeatures);
    v.setUint32(F.refcountOrder.at, h.refcountOrder);
    v.setUint32(F.headerLength.at, h.headerLength);
    if (h.headerLength > F.compressionType.at) {
      v.setUint8(F.compressionType.at, h.compressionType);
      bytes.set(h.trailing.subarray(0, h.headerLength - TRAILING_AT), TRAILING_AT);
    }
  }
  return bytes;
}
