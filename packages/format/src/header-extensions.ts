import { DiskError } from '@q/raw';
import { alignUp, decodeString, encodeString, readU64, view, writeU64 } from './bytes.js';
import {
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO,
  EXT_DATA_FILE,
  EXT_END,
  EXT_FEATURE_NAMES,
  MAX_BITMAP_DIRECTORY_BYTES,
  MAX_BITMAPS,
} from './limits.js';
import type { QcowHeader } from './header.js';

/** One raw extension as stored: kept whole so unknown ones survive a header rewrite. */
export interface HeaderExtension {
  type: number;
  data: Uint8Array;
}

export interface FeatureName {
  kind: 'incompatible' | 'compatible' | 'autoclear';
  bit: number;
  name: string;
}

export interface BitmapsExtension {
  nbBitmaps: number;
  directorySize: number;
  directoryOffset: number;
}

/** What the extensions say, decoded; `all` keeps every extension in file order, known or not. */
export interface HeaderExtensions {
  all: HeaderExtension[];
  backingFormat?: string;
  featureNames: FeatureName[];
  bitmaps?: BitmapsExtension;
  dataFile?: string;
  /** End of the extension area (the end marker included): where the backing file name may start. */
  end: number;
}

/**
 * Walks the extensions that follow the header inside the first cluster (spec: "Header extensions"). The walk is
 * bounded by the cluster, so a missing end marker or a lying length is an error, never a run past the buffer.
 */
export function decodeHeaderExtensions(cluster0: Uint8Array, header: QcowHeader): HeaderExtensions {
  const result: HeaderExtensions = { all: [], featureNames: [], end: header.headerLength };
  // The area ends at the backing file name when there is one, else at the end of the first cluster.
  const limit = Math.min(cluster0.length, header.backingFileOffset !== 0 ? header.backingFileOffset : cluster0.length);
  const v = view(cluster0);
  let at = header.headerLength;
  // Like QEMU, an area that reaches its limit without an end marker simply ends there.
  while (at + 8 <= limit) {
    const type = v.getUint32(at);
    const length = v.getUint32(at + 4);
    at += 8;
    if (type === EXT_END) break;
    if (length > limit - at) {
      throw new DiskError('E_CORRUPT', `Invalid header extension 0x${type.toString(16)}: length ${length} runs past the first cluster`, {
        offset: at - 8,
      });
    }
    const data = cluster0.slice(at, at + length);
    at += alignUp(length, 8);
    result.all.push({ type, data });
    decodeKnown(result, type, data);
  }
  result.end = Math.min(at, limit);
  return result;
}

function decodeKnown(result: HeaderExtensions, type: number, data: Uint8Array): void {
  switch (type) {
    case EXT_BACKING_FORMAT:
      result.backingFormat = decodeString(data);
      break;
    case EXT_DATA_FILE:
      result.dataFile = decodeString(data);
      break;
    case EXT_FEATURE_NAMES:
      result.featureNames = decodeFeatureNames(data);
      break;
    case EXT_BITMAPS:
      result.bitmaps = decodeBitmapsExtension(data);
      break;
    case EXT_CRYPTO:
      // Encrypted images are refused by the header check; nothing to decode here.
      break;
  }
}

/** Feature name table entries (spec: "Feature name table"): u8 type, u8 bit, 46 bytes of name, zero padded. */
const FEATURE_NAME_BYTES = 48;
const FEATURE_NAME_TEXT = 46;
const FEATURE_KINDS = ['incompatible', 'compatible', 'autoclear'] as const;

function decodeFeatureNames(data: Uint8Array): FeatureName[] {
  const names: FeatureName[] = [];
  for (let at = 0; at + FEATURE_NAME_BYTES <= data.length; at += FEATURE_NAME_BYTES) {
    const kind = FEATURE_KINDS[data[at] ?? 255];
    if (kind === undefined) continue;
    const raw = data.subarray(at + 2, at + FEATURE_NAME_BYTES);
    const nul = raw.indexOf(0);
    names.push({ kind, bit: data[at + 1] ?? 0, name: decodeString(nul < 0 ? raw : raw.subarray(0, nul)) });
  }
  return names;
}

const BITMAPS_EXTENSION_BYTES = 24;

function decodeBitmapsExtension(data: Uint8Array): BitmapsExtension {
  if (data.length !== BITMAPS_EXTENSION_BYTES) throw new DiskError('E_CORRUPT', `Invalid bitmaps extension length ${data.length} (must be 24)`);
  const v = view(data);
  const ext: BitmapsExtension = {
    nbBitmaps: v.getUint32(0),
    directorySize: readU64(v, 8, 'bitmap directory size'),
    directoryOffset: readU64(v, 16, 'bitmap directory offset'),
  };
  if (v.getUint32(4) !== 0) throw new DiskError('E_CORRUPT', 'Invalid bitmaps extension: reserved field is not zero');
  if (ext.nbBitmaps === 0) throw new DiskError('E_CORRUPT', 'Invalid bitmaps extension: no bitmaps');
  if (ext.nbBitmaps > MAX_BITMAPS) throw new DiskError('E_TOO_LARGE', `Too many persistent bitmaps (${ext.nbBitmaps})`);
  if (ext.directorySize > MAX_BITMAP_DIRECTORY_BYTES) {
    throw new DiskError('E_TOO_LARGE', `Bitmap directory too large (${ext.directorySize} bytes)`);
  }
  return ext;
}

/** The bitmaps extension's 24 data bytes (spec: "Bitmaps extension"): the inverse of its decoder. */
export function encodeBitmapsExtension(ext: BitmapsExtension): Uint8Array {
  const data = new Uint8Array(BITMAPS_EXTENSION_BYTES);
  const v = view(data);
  v.setUint32(0, ext.nbBitmaps);
  // Bytes 4-7 are reserved and stay zero.
  writeU64(v, 8, ext.directorySize);
  writeU64(v, 16, ext.directoryOffset);
  return data;
}

/**
 * Reads the backing file name stored in the first cluster (after the extensions, not NUL-terminated).
 * Returns undefined when the image has none.
 */
export function decodeBackingFileName(cluster0: Uint8Array, header: QcowHeader): string | undefined {
  if (header.backingFileOffset === 0) return undefined;
  const end = header.backingFileOffset + header.backingFileSize;
  if (end > cluster0.length) {
    throw new DiskError('E_PAST_EOF', 'backing file name runs past the end of the file', { offset: header.backingFileOffset });
  }
  return decodeString(cluster0.subarray(header.backingFileOffset, end));
}

/**
 * The extension area as stored after header_length: each extension's type, length and data padded to 8 bytes,
 * then the end marker (type 0, length 0). The inverse of decodeHeaderExtensions' `all`.
 */
export function encodeHeaderExtensions(extensions: readonly HeaderExtension[]): Uint8Array {
  const size = extensions.reduce((sum, e) => sum + 8 + alignUp(e.data.length, 8), 8);
  const bytes = new Uint8Array(size);
  const v = view(bytes);
  let at = 0;
  for (const { type, data } of extensions) {
    if (type === EXT_END) throw new DiskError('E_INVALID', 'a header extension of type 0 would end the extension area');
    v.setUint32(at, type);
    v.setUint32(at + 4, data.length);
    bytes.set(data, at + 8);
    at += 8 + alignUp(data.length, 8);
  }
  // The end marker: the last 8 bytes, already zero.
  return bytes;
}

/** The data of a feature name table extension; names longer than 46 bytes are cut, as the field holds no more. */
export function encodeFeatureNameTable(names: readonly FeatureName[]): Uint8Array {
  const table = new Uint8Array(names.length * FEATURE_NAME_BYTES);
  names.forEach(({ kind, bit, name }, i) => {
    const at = i * FEATURE_NAME_BYTES;
    table[at] = FEATURE_KINDS.indexOf(kind);
    table[at + 1] = bit;
    table.set(encodeString(name).subarray(0, FEATURE_NAME_TEXT), at + 2);
  });
  return table;
}
