import { checkCreateOptions, createQcow2 } from '@q/qcow2';
import { isDiskError, type BlockFile } from '@q/raw';
import { layOutRawFile, rawPreallocation, type RawPreallocation } from '../raw-file-layout.js';
import type { LockPermissions } from '@q/raw';
import { dataFileLocks, imageFileLocks, LOCK_USERS, toolUser } from '@q/vkd';
import { cliStore } from '../cli-store.js';
import { checkOptionNames, formattingLine, parseOptionList, qcow2CreateOptions } from '../create-options.js';
import { createOptionsHelp, wantsOptionsHelp } from '../create-options-help.js';
import { openErrorReason } from '../describe-error.js';
import { allValues, getopt, hasFlag, lastValue } from '../getopt.js';
import { parseSize, parseSizeParameter, suffixMessage } from '../numbers.js';
import { openImage } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

/**
 * `qcow create`: qemu-img create for qcow2 and raw. The size may be omitted with a backing file (its size is
 * used); `-u` does not open the backing file (the size must then be given).
 */
export async function createCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'f:o:b:F:uqh', long: { 'object': true } });
  const [file, sizeText, ...extra] = parsed.operands;
  if (wantsOptionsHelp(allValues(parsed, 'o'))) {
    writeOut(createOptionsHelp(lastValue(parsed, 'f') ?? 'raw', file !== undefined));
    return 0;
  }
  if (file === undefined) throw new UsageError('Expecting image file name');
  if (extra.length > 0) throw new UsageError(`Unexpected argument: ${extra[0]}`);
  const format = lastValue(parsed, 'f') ?? 'raw';
  const options = parseOptionList(allValues(parsed, 'o'));
  const backing = lastValue(parsed, 'b') ?? options.get('backing_file');
  const backingFormat = lastValue(parsed, 'F') ?? options.get('backing_fmt');
  if (backing !== undefined) options.set('backing_file', backing);
  if (backingFormat !== undefined) options.set('backing_fmt', backingFormat);
  let size = sizeText !== undefined ? parseImageSize(sizeText) : undefined;
  const sizeOption = options.get('size');
  if (sizeOption !== undefined) {
    if (size !== undefined) throw new ExitError(`${file}: The image size must be specified only once`, 1);
    try {
      size = parseSizeParameter(sizeOption);
    } catch (error) {
      throw error instanceof ExitError ? new ExitError(`${file}: ${error.message}`, 1) : error;
    }
  }
  options.delete('size');
  if (format !== 'raw' && format !== 'qcow2') throw new ExitError(`${file}: Unknown file format '${format}'`, 1);
  if (format === 'qcow2') inFile(file, () => checkOptionNames(options));
  if (format === 'raw' && backing !== undefined) throw new ExitError(`${file}: Backing file not supported for file format 'raw'`, 1);
  if (backing !== undefined) {
    // As qemu-img 7.2: without -u the backing file must open (its format probed when -F is missing, to name it in
    // the refusal); either way a backing file without -F is refused, since probing it at every open is unsafe.
    const opened = hasFlag(parsed, 'u') ? undefined : await probeBacking(file, backing, backingFormat);
    if (backingFormat === undefined) {
      const detected = opened === undefined ? '' : `\nDetected format of ${opened.format}.`;
      throw new ExitError(`${file}: Backing file specified without backing format${detected}`, 1);
    }
    size ??= opened?.size;
  }
  if (size === undefined) throw new ExitError(`${file}: Image creation needs a size parameter`, 1);
  const quiet = hasFlag(parsed, 'q');

  if (format === 'raw') {
    const preallocation = options.get('preallocation');
    for (const key of options.keys()) if (key !== 'preallocation') throw new ExitError(`${file}: Invalid parameter '${key}'`, 1);
    if (!quiet) writeOut(formattingLine(file, 'raw', undefined, size) + (preallocation !== undefined ? ` preallocation=${preallocation}` : '') + '\n');
    const judged = rawPreallocation(preallocation, `${file}: `);
    if ('refusal' in judged) {
      if (judged.emptyFirst) await createRaw(file, undefined);
      throw judged.refusal;
    }
    await createRaw(file, { size: Math.ceil(size / 512) * 512, preallocation: judged.mode });
    return 0;
  }
  // As qemu-img: the Formatting line comes first, then the values are judged, all before the file is created.
  if (!quiet) writeOut(formattingLine(file, 'qcow2', options, size) + '\n');
  if (backing === undefined && backingFormat !== undefined) throw new ExitError(`${file}: Backing format cannot be used without backing file`, 1);
  const qcowOptions = inFile(file, () => {
    const result = qcow2CreateOptions(options, Math.ceil(size / 512) * 512);
    checkCreateOptions(result);
    return result;
  });
  const target = await openLocked(file, imageFileLocks('qcow2', toolUser(true), true, false));
  await createQcow2(target, qcowOptions, {
    openDataFile: (name, writable) => cliStore().open(cliStore().resolve(file, name), writable ? { create: true, lock: dataFileLocks(true, false) } : {}),
  });
  return 0;
}

/** Runs an option check; its complaint is reported as qemu-img reports it, prefixed with the file name. */
function inFile<T>(file: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof UsageError || isDiskError(error)) throw new ExitError(`${file}: ${error.message}`, 1);
    throw error;
  }
}

/**
 * Size and format of the backing file, opened as the new image will open it (relative to the new image's
 * directory). A failure is qemu-img's two lines: the reason, then "Could not open backing image.".
 */
async function probeBacking(file: string, backing: string, format: string | undefined): Promise<{ size: number; format: string }> {
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    throw new ExitError(`${file}: Unknown driver '${format}'\nCould not open backing image.`, 1);
  }
  const path = cliStore().resolve(file, backing);
  let device;
  try {
    // Only the size is read: qemu-img create reads it beside a running VM too (force-share).
    device = await openImage(path, { format, ignoreBacking: true, forceShare: true });
  } catch (error) {
    // qemu-img names the backing file as recorded, not as resolved.
    throw new ExitError(`${file}: Could not open '${backing}': ${openErrorReason(error, backing)}\nCould not open backing image.`, 1);
  }
  try {
    return { size: device.size, format: device.format };
  } finally {
    await device.close();
  }
}

/** The new image's file, locked as a writer before it is emptied (qemu-img refuses an image in use). */
async function openLocked(path: string, lock: LockPermissions): Promise<BlockFile> {
  try {
    return await cliStore().open(path, { create: true, truncate: true, lock });
  } catch (error) {
    // qemu-img create: "qemu-img: FILE: Failed to get "write" lock".
    if (isDiskError(error) && error.code === 'E_LOCKED') throw new ExitError(`${path}: ${error.message}`, 1);
    throw error;
  }
}

/** Creates (or empties) a raw file and lays it out as qemu-img does; without `layout` it is left empty. */
async function createRaw(path: string, layout: { size: number; preallocation: RawPreallocation } | undefined): Promise<void> {
  const file = await openLocked(path, imageFileLocks('raw', LOCK_USERS.creating, true, false));
  try {
    if (layout !== undefined) await layOutRawFile(file, layout.size, layout.preallocation);
    await file.flush();
  } finally {
    await file.close();
  }
}

/** The SIZE operand, with qemu-img's two lines for one its suffix parser cannot read. */
function parseImageSize(text: string): number {
  try {
    return parseSize(text, 'image size');
  } catch (error) {
    // A well-formed size too large for us keeps its own message; only a malformed one gets qemu-img's lines.
    if (/^\s*[\d.]+\s*[kmgtpe]?\s*$/i.test(text)) throw error;
    throw new ExitError(suffixMessage('image size'), 1);
  }
}
