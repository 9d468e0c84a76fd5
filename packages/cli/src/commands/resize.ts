import { isDiskError, type BlockDevice } from '@q/raw';
import { Qcow2Image, type Preallocation } from '@q/qcow2';
import { imageFileLocks, toolUser } from '@q/vkd';
import { cliStore } from '../cli-store.js';
import { openFailure } from '../describe-error.js';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { parseSizeParameter } from '../numbers.js';
import { openImage } from '../open-source.js';
import { allocateRange, type RawPreallocation } from '../raw-file-layout.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

const PREALLOCATIONS = new Set(['off', 'metadata', 'falloc', 'full']);

/**
 * `qcow resize`: qemu-img resize for qcow2 and raw images, with its order of complaints: the size is judged
 * first, then the image is opened, then shrinking needs --shrink and preallocation needs growth.
 */
export async function resizeCommand(argv: string[]): Promise<number> {
  const args = [...argv];
  // As qemu-img: a last argument like "-1G" is the size, not an option (getopt would reject it).
  let sizeText: string | undefined;
  const last = args[args.length - 1];
  if (last !== undefined && /^-[\d.]/.test(last)) sizeText = args.pop();
  const parsed = getopt(args, { short: 'f:hq', long: { preallocation: true, shrink: false, object: true, 'image-opts': false } });
  const operands = parsed.operands;
  if (sizeText !== undefined) operands.push(sizeText);
  if (operands.length < 2 && args.length + (sizeText === undefined ? 0 : 1) < 2) throw new UsageError('Not enough arguments');
  if (operands.length !== 2) throw new UsageError('Expecting image file name and size');
  const [file, sizeArg] = operands as [string, string];
  const preallocation = lastValue(parsed, 'preallocation') ?? 'off';
  if (!PREALLOCATIONS.has(preallocation)) throw new ExitError(`Invalid preallocation mode '${preallocation}'`, 1);
  const relative = sizeArg.startsWith('+') ? 1 : sizeArg.startsWith('-') ? -1 : 0;
  const amount = parseSizeParameter(relative === 0 ? sizeArg : sizeArg.slice(1));
  if (relative === 0 && amount === 0) throw new ExitError('New image size must be positive', 1);
  const quiet = hasFlag(parsed, 'q');
  const shrink = hasFlag(parsed, 'shrink');

  let device: BlockDevice;
  try {
    device = await openImage(file, { format: lastValue(parsed, 'f'), writable: true, ignoreBacking: true });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }
  const current = device.size;
  const target = relative === 0 ? amount : current + relative * amount;
  if (target <= 0) {
    await device.close();
    throw new ExitError('New image size must be positive', 1);
  }
  try {
    if (target < current) {
      if (preallocation !== 'off') throw new ExitError('Preallocation can only be used for growing images', 1);
      if (!shrink) {
        throw new ExitError(
          "Use the --shrink option to perform a shrink operation.\nqcow: warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.",
          1,
        );
      }
    }
    if (device instanceof Qcow2Image) {
      if (target % 512 !== 0) throw new ExitError('The new size must be a multiple of 512', 1);
      await device.resize(target, { preallocation: preallocation as Preallocation });
    } else {
      await device.close();
      await resizeRaw(file, current, target, preallocation);
    }
  } finally {
    await device.close().catch(() => undefined);
  }
  if (!quiet) writeOut('Image resized.\n');
  return 0;
}

/** A raw image is its file: truncate it; falloc reserves the new part's blocks, full writes zeros over it. */
async function resizeRaw(path: string, current: number, target: number, preallocation: string): Promise<void> {
  if (preallocation === 'metadata') throw new ExitError('Unsupported preallocation mode: metadata', 1);
  let file;
  try {
    file = await cliStore().open(path, { writable: true, lock: imageFileLocks('raw', toolUser(true), true, false) });
  } catch (error) {
    if (isDiskError(error)) throw new ExitError(openFailure(error, path), 1);
    throw error;
  }
  try {
    await file.truncate(target);
    if (target > current) await allocateRange(file, current, target - current, preallocation as RawPreallocation);
    await file.flush();
  } finally {
    await file.close();
  }
}

