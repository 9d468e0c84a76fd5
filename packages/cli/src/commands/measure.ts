import { qemuJson } from '../qemu-json.js';
import { chainStatus } from '@q/backing';
import { encodeString } from '@q/format';
import { bitmapsBytes, measureQcow2, Qcow2Image, type MeasureLayout } from '@q/qcow2';
import type { BlockDevice } from '@q/raw';
import { openFailure } from '../describe-error.js';
import { getopt, allValues, hasFlag, lastValue } from '../getopt.js';
import { parseOptionList } from '../create-options.js';
import { parseSize } from '../numbers.js';
import { openImage, parseSnapshotParamOrExit } from '../open-source.js';
import { ExitError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

/** Extents are asked for a window at a time so memory follows the number of extents, not the disk size. */
const WINDOW = 2 ** 40;

/** QEMU caps the L1 table at 32 MiB, so a qcow2 image can map at most 4 Mi L2 tables. */
const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;

interface Target {
  format: 'qcow2' | 'raw';
  layout: MeasureLayout;
  version: 2 | 3;
  preallocation: string;
  backingFile: boolean;
}

/**
 * `qcow measure`: qemu-img measure. How large a new image must be to hold FILE's data (or an empty disk of
 * `--size` bytes): `required` for what is allocated, `fully-allocated` for every cluster, and with a qcow2
 * source and a v3 qcow2 target the bytes its persistent bitmaps would take.
 */
export async function measureCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'f:hl:o:O:U', long: { output: true, size: true, object: true, 'image-opts': false, 'force-share': false } });
  const output = lastValue(parsed, 'output') ?? 'human';
  if (output !== 'human' && output !== 'json') throw new ExitError('--output must be used with human or json as argument.', 1);
  const sizeText = lastValue(parsed, 'size');
  const files = parsed.operands;
  if (files.length > 1) throw new ExitError('At most one filename argument is allowed.', 1);
  const file = files[0];
  if (sizeText !== undefined && file !== undefined) throw new ExitError('--size N cannot be used together with a filename.', 1);
  if (sizeText === undefined && file === undefined) throw new ExitError('Either --size N or one filename must be specified.', 1);
  const size = sizeText === undefined ? undefined : parseMeasureSize(sizeText);
  const formatName = lastValue(parsed, 'O') ?? 'raw';
  if (formatName !== 'qcow2' && formatName !== 'raw') {
    if (formatName === 'vmdk' || formatName === 'vdi' || formatName === 'vpc' || formatName === 'vhdx' || formatName === 'qed' || formatName === 'luks') {
      throw new ExitError(`Block driver '${formatName}' does not support size measurement`, 1);
    }
    throw new ExitError(`Unknown file format '${formatName}'`, 1);
  }
  const target = targetOf(formatName, parseOptionList(allValues(parsed, 'o')));

  if (size !== undefined) {
    report(output, measureEmpty(target, size), undefined);
    return 0;
  }
  const snapshotText = lastValue(parsed, 'l');
  const snapshot = snapshotText === undefined ? undefined : parseSnapshotParamOrExit(snapshotText);
  let device: BlockDevice;
  try {
    device = await openImage(file!, {
      format: lastValue(parsed, 'f'),
      blockingIo: true,
      forceShare: hasFlag(parsed, 'U', 'force-share'),
      ...(snapshot === undefined ? {} : { snapshot }),
    });
  } catch (error) {
    throw new ExitError(openFailure(error, file!), 1);
  }
  try {
    const virtualSize = Math.ceil(device.size / 512) * 512;
    if (target.format === 'raw') {
      report(output, { required: virtualSize, fullyAllocated: virtualSize }, undefined);
      return 0;
    }
    checkL1Limit(target, virtualSize);
    const clusterSize = 2 ** target.layout.clusterBits;
    let dataClusters: number;
    if (target.backingFile || target.preallocation === 'full' || target.preallocation === 'falloc') {
      // qemu-img counts every cluster: with a backing file it does not judge what the overlay will need.
      dataClusters = Math.ceil(virtualSize / clusterSize);
    } else {
      dataClusters = await countDataClusters(device, clusterSize);
    }
    const measured = measureQcow2(virtualSize, dataClusters, target.layout);
    // Bitmaps are shown when both sides can hold persistent bitmaps: a v3 qcow2 source and a v3 target.
    let bitmaps: number | undefined;
    if (target.version === 3 && device instanceof Qcow2Image && device.metadata.header.version >= 3) {
      const entries = (device.metadata.bitmaps ?? []).map((b) => ({ granularityBits: b.granularityBits, nameBytes: encodeString(b.name).length }));
      bitmaps = bitmapsBytes(entries, virtualSize, target.layout.clusterBits);
    }
    report(output, measured, bitmaps);
  } finally {
    await device.close();
  }
  return 0;
}

/** Clusters (of the target's size) that hold data anywhere down FILE's chain; ranges that read as zeros need none. */
async function countDataClusters(device: BlockDevice, clusterSize: number): Promise<number> {
  let count = 0;
  let counted = -1;
  for (let offset = 0; offset < device.size; offset += WINDOW) {
    for (const extent of await chainStatus(device, offset, Math.min(WINDOW, device.size - offset))) {
      if (!extent.data || extent.zero) continue;
      const first = Math.max(Math.floor(extent.offset / clusterSize), counted + 1);
      const last = Math.ceil((extent.offset + extent.length) / clusterSize) - 1;
      if (last >= first) {
        count += last - first + 1;
        counted = last;
      }
    }
  }
  return count;
}

function measureEmpty(target: Target, size: number): { required: number; fullyAllocated: number } {
  if (target.format === 'raw') return { required: size, fullyAllocated: size };
  checkL1Limit(target, size);
  const clusters = target.preallocation === 'full' || target.preallocation === 'falloc' ? Math.ceil(size / 2 ** target.layout.clusterBits) : 0;
  return measureQcow2(size, clusters, target.layout);
}

function checkL1Limit(target: Target, size: number): void {
  const clusterSize = 2 ** target.layout.clusterBits;
  const l2Coverage = clusterSize * (clusterSize / (target.layout.extendedL2 ? 16 : 8));
  if (Math.ceil(size / l2Coverage) > MAX_L1_ENTRIES) throw new ExitError('The image size is too large (try using a larger cluster size)', 1);
}

function report(output: string, measured: { required: number; fullyAllocated: number }, bitmaps: number | undefined): void {
  if (output === 'json') {
    const json: Record<string, number> = {};
    if (bitmaps !== undefined) json['bitmaps'] = bitmaps;
    json['required'] = measured.required;
    json['fully-allocated'] = measured.fullyAllocated;
    writeOut(qemuJson(json) + '\n');
    return;
  }
  const lines = [`required size: ${measured.required}`, `fully allocated size: ${measured.fullyAllocated}`];
  if (bitmaps !== undefined) lines.push(`bitmaps size: ${bitmaps}`);
  writeOut(lines.join('\n') + '\n');
}

/** `--size`: a byte count as qemu-img reads it, rounded up to 512; its two complaints are its own. */
function parseMeasureSize(text: string): number {
  let size: number;
  try {
    size = parseSize(text, 'size');
  } catch {
    if (/^\s*\d/.test(text) && /^\s*[\d.]+\s*[kmgtpe]?\s*$/i.test(text)) throw new ExitError('Invalid image size specified. Must be between 0 and 9223372036854775807.', 1);
    throw new ExitError('Invalid image size specified. You may use k, M, G, T, P or E suffixes for\nqcow: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.', 1);
  }
  return Math.ceil(size / 512) * 512;
}

const QCOW2_OPTIONS = new Set([
  'size', 'compat', 'backing_file', 'backing_fmt', 'data_file', 'data_file_raw', 'encryption', 'encrypt.format',
  'cluster_size', 'preallocation', 'lazy_refcounts', 'refcount_bits', 'compression_type', 'extended_l2',
]);

/** The target image as `-O` and `-o` describe it, with qemu-img measure's complaints (not create's: some differ). */
function targetOf(format: 'qcow2' | 'raw', options: Map<string, string>): Target {
  const known = format === 'qcow2' ? QCOW2_OPTIONS : new Set(['size', 'preallocation']);
  const invalidOptions = (line: string): never => {
    throw new ExitError(`${line}\nqcow: Invalid options for file format '${format}'`, 1);
  };
  for (const key of options.keys()) if (!known.has(key)) invalidOptions(`Invalid parameter '${key}'`);
  const target: Target = { format, layout: { clusterBits: 16, refcountOrder: 4, extendedL2: false }, version: 3, preallocation: 'off', backingFile: false };
  if (format === 'raw') return target;
  for (const key of ['lazy_refcounts', 'extended_l2', 'data_file_raw', 'encryption']) {
    const value = options.get(key);
    if (value !== undefined && !['on', 'off', 'true', 'false'].includes(value)) invalidOptions(`Parameter '${key}' expects 'on' or 'off'`);
  }
  const clusterSize = options.get('cluster_size');
  if (clusterSize !== undefined) {
    let bits = NaN;
    try {
      bits = Math.log2(parseSize(clusterSize, 'cluster size'));
    } catch {
      invalidOptions(`Parameter 'cluster_size' expects a non-negative number below 2^64`);
    }
    if (!Number.isInteger(bits) || bits < 9 || bits > 21) throw new ExitError('Cluster size must be a power of two between 512 and 2048k', 1);
    target.layout.clusterBits = bits;
  }
  const compat = options.get('compat');
  if (compat !== undefined) {
    if (compat === '0.10' || compat === 'v2') target.version = 2;
    else if (compat !== '1.1' && compat !== 'v3') throw new ExitError(`Invalid compatibility level: '${compat}'`, 1);
  }
  target.layout.extendedL2 = ['on', 'true'].includes(options.get('extended_l2') ?? 'off');
  if (target.layout.extendedL2 && target.layout.clusterBits < 14) {
    throw new ExitError('Extended L2 entries are only supported with cluster sizes of at least 16384 bytes', 1);
  }
  const refcountBits = options.get('refcount_bits');
  if (refcountBits !== undefined) {
    const order = Math.log2(Number(refcountBits));
    if (!Number.isInteger(order) || order < 0 || order > 6) throw new ExitError('Refcount width must be a power of two and may not exceed 64 bits', 1);
    if (target.version === 2 && order !== 4) {
      throw new ExitError('Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)', 1);
    }
    target.layout.refcountOrder = order;
  }
  const preallocation = options.get('preallocation') ?? 'off';
  if (!['off', 'metadata', 'falloc', 'full'].includes(preallocation)) throw new ExitError(`invalid parameter value: ${preallocation}`, 1);
  target.preallocation = preallocation;
  target.backingFile = options.has('backing_file');
  return target;
}
