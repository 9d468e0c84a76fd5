import { Qcow2Image } from '@q/qcow2';
import type { BlockDevice } from '@q/raw';
import { describeError, openFailure } from '../describe-error.js';
import { getopt, lastValue } from '../getopt.js';
import { parseSize } from '../numbers.js';
import { openImage } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';

type Action = { kind: 'add' | 'remove' | 'clear' | 'enable' | 'disable' } | { kind: 'merge'; source: string };

const ACTION_NAMES = new Set(['add', 'remove', 'clear', 'enable', 'disable', 'merge']);

/**
 * `qcow bitmap`: qemu-img bitmap. The actions run in command-line order against one writable open of FILE, each
 * committed before the next (the engine's bitmap operations); the first that fails ends the command with
 * qemu-img's "Operation ACTION on bitmap NAME failed: REASON", exit 1. Success prints nothing.
 */
export async function bitmapCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'b:F:f:g:hq',
    long: { add: false, remove: false, clear: false, enable: false, disable: false, merge: true, 'image-opts': false, object: true },
  });
  const actions: Action[] = parsed.options
    .filter((option) => ACTION_NAMES.has(option.name))
    .map((option) => (option.name === 'merge' ? { kind: 'merge', source: option.value! } : { kind: option.name as Exclude<Action['kind'], 'merge'> }));
  // qemu-img's checks, in its order.
  if (actions.length === 0) throw new ExitError('Need at least one of --add, --remove, --clear, --enable, --disable, or --merge', 1);
  const granularityText = lastValue(parsed, 'g');
  const sourceFile = lastValue(parsed, 'b');
  const sourceFormat = lastValue(parsed, 'F');
  if (granularityText !== undefined && !actions.some((action) => action.kind === 'add')) throw new ExitError('granularity only supported with --add', 1);
  if (sourceFile !== undefined && !actions.some((action) => action.kind === 'merge')) throw new ExitError('Merge bitmap source file only supported with --merge', 1);
  if (sourceFormat !== undefined && sourceFile === undefined) throw new ExitError('-F only supported with -b', 1);
  if (parsed.operands.length !== 2) throw new ExitError('Expecting filename and bitmap name', 1);
  const [file, name] = parsed.operands as [string, string];
  const granularity = granularityText === undefined ? 0 : parseGranularity(granularityText);

  let device: BlockDevice;
  try {
    device = await openImage(file, { format: lastValue(parsed, 'f'), writable: true, ignoreBacking: true });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }
  try {
    for (const action of actions) await runAction(device, action, { file, name, granularity, sourceFile, sourceFormat });
  } finally {
    await device.close();
  }
  return 0;
}

interface Target {
  file: string;
  name: string;
  /** 0: the image's default. */
  granularity: number;
  sourceFile: string | undefined;
  sourceFormat: string | undefined;
}

async function runAction(device: BlockDevice, action: Action, target: Target): Promise<void> {
  const { name } = target;
  const failed = (reason: string): ExitError => new ExitError(`Operation ${action.kind} on bitmap ${name} failed: ${reason}`, 1);
  // A raw image has nowhere to keep a bitmap (qemu-img: "Can't store persistent bitmaps to ...").
  if (!(device instanceof Qcow2Image)) throw failed(`Can't store persistent bitmaps to '${target.file}': Operation not supported`);
  try {
    switch (action.kind) {
      case 'add':
        await device.addBitmap(name, { granularity: target.granularity === 0 ? defaultGranularity(device) : target.granularity });
        return;
      case 'remove':
        await device.removeBitmap(name);
        return;
      case 'clear':
        await device.clearBitmap(name);
        return;
      case 'enable':
      case 'disable':
        await device.setBitmapEnabled(name, action.kind === 'enable');
        return;
      case 'merge':
        // qemu-img looks for the bitmap merged into before the one merged from.
        if (!device.bitmaps().some((bitmap) => bitmap.name === name)) throw failed(`Dirty bitmap '${name}' not found`);
        await device.mergeBitmap(name, await mergeSource(device, action.source, target));
        return;
    }
  } catch (error) {
    if (error instanceof ExitError) throw error;
    throw failed(reasonOf(error));
  }
}

/** The source bitmap's bits: from this image, or from -b's image opened read-only (its open failure ends the command). */
async function mergeSource(device: Qcow2Image, source: string, target: Target): Promise<Awaited<ReturnType<Qcow2Image['bitmapBits']>>> {
  if (target.sourceFile === undefined) return device.bitmapBits(source);
  let other: BlockDevice;
  try {
    other = await openImage(target.sourceFile, { format: target.sourceFormat, ignoreBacking: true, forceShare: true });
  } catch (error) {
    throw new ExitError(openFailure(error, target.sourceFile), 1);
  }
  try {
    if (!(other instanceof Qcow2Image)) throw new ExitError(`Operation merge on bitmap ${target.name} failed: Dirty bitmap '${source}' not found`, 1);
    return await other.bitmapBits(source);
  } finally {
    await other.close();
  }
}

/** The engine's message without the file name describeError would put first (qemu-img names none here). */
function reasonOf(error: unknown): string {
  const text = describeError(error);
  return text.replace(/^'[^']*': /, '');
}

/** qemu-img's default for qcow2: the cluster size, at least 4 KiB and at most 64 KiB. */
function defaultGranularity(image: Qcow2Image): number {
  return Math.min(65536, Math.max(4096, image.metadata.geometry.clusterSize));
}

function parseGranularity(text: string): number {
  try {
    return parseSize(text, 'granularity');
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new ExitError('Invalid granularity specified. You may use k, M, G, T, P or E suffixes for\nqcow: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.', 1);
  }
}
