import { AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, INCOMPAT_DATA_FILE, INCOMPAT_COMPRESSION } from '@q/format';
import { Qcow2Image, rewriteRefcountWidth, type AmendChange } from '@q/qcow2';
import { isDiskError, type BlockDevice } from '@q/raw';
import { imageFileLocks, toolUser } from '@q/vkd';
import { cliStore } from '../cli-store.js';
import { parseOptionList } from '../create-options.js';
import { amendOptionsHelp, wantsOptionsHelp } from '../create-options-help.js';
import { writeOut } from '../process-output.js';
import { describeError, openFailure } from '../describe-error.js';
import { allValues, getopt, hasFlag, lastValue } from '../getopt.js';
import { parseSize } from '../numbers.js';
import { openImage } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';

/** Options that exist only when creating an image: qemu-img names them so. */
const CREATE_ONLY = new Set(['cluster_size', 'encryption', 'extended_l2', 'compression_type', 'preallocation', 'encrypt.format']);
const AMENDABLE = new Set(['size', 'compat', 'backing_file', 'backing_fmt', 'data_file', 'data_file_raw', 'lazy_refcounts', 'refcount_bits']);

/**
 * `qcow amend`: qemu-img amend for qcow2. Header-level options change in place; the refcount width is
 * rewritten into new structures (crash-safe: the header switches in one write). What qemu-img refuses (creation
 * options, the backing file, a too narrow width, a downgrade v2 cannot hold) is refused with its words.
 */
export async function amendCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'f:ho:pqt:', long: { force: false, object: true, 'image-opts': false } });
  const optionTexts = allValues(parsed, 'o');
  if (optionTexts.length === 0) throw new UsageError('Must specify options (-o)');
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const format = lastValue(parsed, 'f');
  if (wantsOptionsHelp(optionTexts)) return amendHelp(file, format);
  const options = parseOptionList(optionTexts);
  const invalid = [...options.keys()].filter((key) => !AMENDABLE.has(key));
  if (invalid.length > 0) {
    const key = invalid[0]!;
    throw new ExitError(`Invalid parameter '${key}'${invalid.length === 1 && CREATE_ONLY.has(key) ? '\nThis option is only supported for image creation' : ''}`, 1);
  }
  for (const key of ['lazy_refcounts', 'data_file_raw']) {
    const value = options.get(key);
    if (value !== undefined && !['on', 'off', 'true', 'false'].includes(value)) throw new ExitError(`Parameter '${key}' expects 'on' or 'off'`, 1);
  }
  if (format === 'raw') throw new ExitError("Format driver 'raw' does not support option amendment", 1);

  let device: BlockDevice;
  try {
    // The backing file matters only to a downgrade (zero clusters over it must become written zeros).
    device = await openImage(file, { format, writable: true, ignoreBacking: options.get('compat') !== '0.10' && options.get('compat') !== 'v2' });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }
  let widthOrder: number | undefined;
  try {
    if (!(device instanceof Qcow2Image)) throw new ExitError("Format driver 'raw' does not support option amendment", 1);
    const plan = planAmend(device, options);
    widthOrder = plan.refcountOrder;
    // A narrower width is judged before anything changes; a downgrade needs 16 bits first.
    if (widthOrder !== undefined && plan.change.version === 2) {
      await device.close();
      await changeWidth(file, widthOrder);
      widthOrder = undefined;
      device = await openImage(file, { format: 'qcow2', writable: true });
    }
    const image = device as Qcow2Image;
    // v2 knows zlib only: a zstd image goes down only while nothing is stored compressed (it becomes zlib).
    if (plan.change.version === 2 && image.compressionType !== 'zlib' && (await image.map(0, image.size)).some((extent) => extent.kind === 'compressed')) {
      throw new ExitError('Cannot downgrade an image with zstd compression type and existing compressed clusters', 1);
    }
    if (Object.keys(plan.change).length > 0) await image.amend(plan.change);
    if (plan.size !== undefined && plan.size !== image.size) await image.resize(plan.size);
  } catch (error) {
    await device.close().catch(() => undefined);
    if (error instanceof ExitError || error instanceof UsageError) throw error;
    throw new ExitError(describeError(error, file), 1);
  }
  await device.close();
  if (widthOrder !== undefined) await changeWidth(file, widthOrder);
  return 0;
}

/** `-o help`: the options of the image's format, found by opening it unless -f names it (as qemu-img). */
async function amendHelp(file: string, format: string | undefined): Promise<number> {
  let probed = format;
  if (probed === undefined) {
    let device: BlockDevice;
    try {
      device = await openImage(file, { ignoreBacking: true });
    } catch (error) {
      throw new ExitError(openFailure(error, file), 1);
    }
    probed = device.format;
    await device.close();
  }
  if (probed !== 'qcow2') throw new ExitError(`Format driver '${probed}' does not support option amendment`, 1);
  writeOut(amendOptionsHelp());
  return 0;
}

interface AmendPlan {
  change: AmendChange;
  refcountOrder: number | undefined;
  size: number | undefined;
}

/** The options as changes to this image, with qemu-img amend's refusals. */
function planAmend(image: Qcow2Image, options: Map<string, string>): AmendPlan {
  const { header } = image.metadata;
  const change: AmendChange = {};
  let version = header.version;
  const compat = options.get('compat');
  if (compat !== undefined) {
    if (compat === '0.10' || compat === 'v2') version = 2;
    else if (compat === '1.1' || compat === 'v3') version = 3;
    else throw new ExitError(`Unknown compatibility level ${compat}`, 1);
  }
  if (options.has('backing_file') || options.has('backing_fmt')) {
    throw new ExitError("Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.", 1);
  }
  let refcountOrder: number | undefined;
  const refcountBits = options.get('refcount_bits');
  if (refcountBits !== undefined) {
    const order = Math.log2(Number(refcountBits));
    if (!Number.isInteger(order) || order < 0 || order > 6) throw new ExitError('Refcount width must be a power of two and may not exceed 64 bits', 1);
    if (version === 2 && order !== 4) {
      throw new ExitError('Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)', 1);
    }
    if (order !== header.refcountOrder) refcountOrder = order;
  }
  const lazy = options.get('lazy_refcounts');
  if (lazy !== undefined) {
    const on = lazy === 'on' || lazy === 'true';
    if (on && version === 2) throw new ExitError('Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)', 1);
    if (on !== ((header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n)) change.lazyRefcounts = on;
  }
  if (version !== header.version) {
    change.version = version as 2 | 3;
    if (version === 2) {
      if ((refcountOrder ?? header.refcountOrder) !== 4) throw new ExitError('compat=0.10 requires refcount_bits=16', 1);
      if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n) throw new ExitError('Cannot downgrade an image with a data file', 1);
      const blocking = header.incompatibleFeatures & ~INCOMPAT_COMPRESSION;
      if (blocking !== 0n) throw new ExitError(`Cannot downgrade an image with incompatible features 0x${blocking.toString(16)} set`, 1);
    }
  }
  const dataFile = options.get('data_file');
  if (dataFile !== undefined) {
    if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) === 0n) throw new ExitError('data-file can only be set for images that use an external data file', 1);
    change.dataFile = dataFile;
  }
  const dataFileRaw = options.get('data_file_raw');
  if (dataFileRaw !== undefined && (dataFileRaw === 'on' || dataFileRaw === 'true') !== ((header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n)) {
    throw new ExitError('data-file-raw cannot be set on existing images', 1);
  }
  const sizeText = options.get('size');
  let size: number | undefined;
  if (sizeText !== undefined) {
    try {
      size = Math.ceil(parseSize(sizeText, 'size') / 512) * 512;
    } catch {
      throw new ExitError(`Parameter 'size' expects a non-negative number below 2^64`, 1);
    }
  }
  return { change, refcountOrder, size };
}

/** Rewrites the refcount structures at a new width, on the file alone (no engine open: its store would be stale). */
async function changeWidth(path: string, order: number): Promise<void> {
  let file;
  try {
    file = await cliStore().open(path, { writable: true, lock: imageFileLocks('qcow2', toolUser(true), true, false) });
  } catch (error) {
    throw new ExitError(openFailure(error, path), 1);
  }
  try {
    await rewriteRefcountWidth(file, order);
    await file.flush();
  } catch (error) {
    if (isDiskError(error) && error.code === 'E_INVALID') throw new ExitError(error.message, 1);
    throw error;
  } finally {
    await file.close();
  }
}
