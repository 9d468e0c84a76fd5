import { defaultCreateOptions, type CreateOptions, type Preallocation } from '@q/qcow2';
import { parseSize } from './numbers.js';
import { UsageError } from './usage-error.js';

export type QcowCreateOptions = CreateOptions & { preallocation: Preallocation };

/** `-o key=value,...` as a map, in the order given (later keys win). `,,` escapes a comma, as in QEMU. */
export function parseOptionList(texts: readonly string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (const text of texts) {
    for (const part of text.replaceAll(',,', '\u0000').split(',')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = (eq < 0 ? 'on' : part.slice(eq + 1)).replaceAll('\u0000', ',');
      options.set(key, value);
    }
  }
  return options;
}

const KNOWN = new Set([
  'size',
  'compat',
  'cluster_size',
  'refcount_bits',
  'lazy_refcounts',
  'extended_l2',
  'compression_type',
  'preallocation',
  'data_file',
  'data_file_raw',
  'backing_file',
  'backing_fmt',
  'encryption',
  'encrypt.format',
]);

/**
 * What qemu-img refuses before it prints "Formatting ...": unknown options and on/off options that are neither.
 * Everything else is judged after (`qcow2CreateOptions`).
 */
export function checkOptionNames(options: Map<string, string>): void {
  for (const key of options.keys()) {
    if (!KNOWN.has(key)) throw new UsageError(`Invalid parameter '${key}'`);
  }
  for (const key of ['lazy_refcounts', 'extended_l2', 'data_file_raw']) onOff(options, key, false);
}

/** Turns qemu-img's qcow2 creation options into CreateOptions, refusing what qemu-img refuses. */
export function qcow2CreateOptions(options: Map<string, string>, size: number): QcowCreateOptions {
  checkOptionNames(options);
  if (options.has('encryption') || options.has('encrypt.format')) throw new UsageError('encrypted images are not supported');
  const result: QcowCreateOptions = { ...defaultCreateOptions(size), preallocation: 'off' };
  const compat = options.get('compat');
  if (compat !== undefined) {
    if (compat === '0.10' || compat === 'v2') result.version = 2;
    else if (compat === '1.1' || compat === 'v3') result.version = 3;
    else throw new UsageError(`Parameter 'version' does not accept value '${compat}'`);
  }
  const clusterSize = options.get('cluster_size');
  if (clusterSize !== undefined) {
    const bits = Math.log2(parseSize(clusterSize, 'cluster size'));
    if (!Number.isInteger(bits) || bits < 9 || bits > 21) throw new UsageError('Cluster size must be a power of two between 512 and 2048k');
    result.clusterBits = bits;
  }
  const refcountBits = options.get('refcount_bits');
  if (refcountBits !== undefined) {
    const order = Math.log2(Number(refcountBits));
    if (!Number.isInteger(order) || order < 0 || order > 6) throw new UsageError('Refcount width must be a power of two and may not exceed 64 bits');
    result.refcountOrder = order;
  }
  result.lazyRefcounts = onOff(options, 'lazy_refcounts', false);
  result.extendedL2 = onOff(options, 'extended_l2', false);
  const compression = options.get('compression_type') ?? 'zlib';
  if (compression !== 'zlib' && compression !== 'zstd') throw new UsageError(`Parameter 'compression-type' does not accept value '${compression}'`);
  result.compressionType = compression;
  const preallocation = options.get('preallocation') ?? 'off';
  if (!['off', 'metadata', 'falloc', 'full'].includes(preallocation)) {
    throw new UsageError(`Parameter 'preallocation' does not accept value '${preallocation}'`);
  }
  result.preallocation = preallocation as Preallocation;
  const dataFile = options.get('data_file');
  if (dataFile !== undefined) result.dataFile = dataFile;
  if (onOff(options, 'data_file_raw', false)) result.dataFileRaw = true;
  const backing = options.get('backing_file');
  if (backing !== undefined) result.backingFile = backing;
  const backingFormat = options.get('backing_fmt');
  if (backingFormat !== undefined) result.backingFormat = backingFormat;
  return result;
}

function onOff(options: Map<string, string>, key: string, fallback: boolean): boolean {
  const value = options.get(key);
  if (value === undefined) return fallback;
  if (value === 'on' || value === 'true') return true;
  if (value === 'off' || value === 'false') return false;
  throw new UsageError(`Parameter '${key}' expects 'on' or 'off'`);
}

/**
 * qemu-img create's "Formatting ..." line. qemu-img prints it before judging the values, from the options as
 * given (sizes normalized to bytes, the size as given, not rounded), in its option table's order, with defaults
 * for the options that have one.
 */
export function formattingLine(file: string, format: string, options: Map<string, string> | undefined, size: number): string {
  if (options === undefined) return `Formatting '${file}', fmt=${format} size=${size}`;
  const given = (key: string): string | undefined => options.get(key);
  const clusterSize = given('cluster_size');
  const parts: Array<[string, string | undefined]> = [
    ['cluster_size', clusterSize === undefined ? '65536' : String(parseSize(clusterSize, 'cluster size'))],
    ['extended_l2', given('extended_l2') ?? 'off'],
    ['preallocation', given('preallocation')],
    ['compression_type', given('compression_type') ?? 'zlib'],
    ['size', String(size)],
    ['compat', given('compat')],
    ['backing_file', given('backing_file')],
    ['backing_fmt', given('backing_fmt')],
    ['data_file', given('data_file')],
    ['data_file_raw', given('data_file_raw')],
    ['lazy_refcounts', given('lazy_refcounts') ?? 'off'],
    ['refcount_bits', given('refcount_bits') ?? '16'],
  ];
  const shown = parts.filter(([, value]) => value !== undefined).map(([key, value]) => `${key}=${value}`);
  return `Formatting '${file}', fmt=${format} ${shown.join(' ')}`;
}
