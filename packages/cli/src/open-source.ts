import { openDisk, type OpenDiskOptions } from '@q/vkd';
import { isDiskError, RawDisk, type BlockDevice } from '@q/raw';
import { openFailure } from './describe-error.js';
import { writeErr } from './process-output.js';
import { ExitError } from './usage-error.js';

const FORMATS = new Set(['qcow2', 'raw']);

/**
 * Opens a file named on the command line (read-only unless asked). A `-f` naming no format we have is refused in
 * qemu-img's words, which name the file: "Could not open 'F': Unknown driver 'X'".
 */
export async function openImage(spec: string, options: OpenDiskOptions = {}): Promise<BlockDevice> {
  if (options.format !== undefined && !FORMATS.has(options.format)) {
    throw new ExitError(`Could not open '${spec}': Unknown driver '${options.format}'`);
  }
  const device = await openDisk(spec, options);
  if (options.writable === true && device instanceof RawDisk && device.probed) writeErr(probedRawWarning(spec));
  return device;
}

/**
 * openImage for a command that ends when the image does not open: a refusal of the image itself (its format, its
 * header, the system's) in qemu-img's words, "Could not open 'F': REASON", with the command's exit code; failures
 * of other files (a backing file) as they are.
 */
export async function openImageOrExit(spec: string, options: OpenDiskOptions = {}): Promise<BlockDevice> {
  try {
    return await openImage(spec, options);
  } catch (error) {
    throw openRefusal(error, spec);
  }
}

/** What openImageOrExit throws for `error`: the image's own refusal as an ExitError, anything else unchanged. */
export function openRefusal(error: unknown, spec: string): unknown {
  if (!isDiskError(error) || (error.file !== undefined && error.file !== spec)) return error;
  return new ExitError(openFailure(error, spec), undefined, { cause: error });
}

/**
 * qemu-img's (and qemu-io's, qemu-nbd's) warning when it opens a raw image for writing without being told its
 * format: writes that would give its first sector another format's header are then refused (RawDisk.write).
 */
export function probedRawWarning(spec: string): string {
  return (
    `WARNING: Image format was not specified for '${spec}' and probing guessed raw.\n` +
    '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n' +
    "         Specify the 'raw' format explicitly to remove the restrictions.\n"
  );
}

/** A `-l` value naming a parameter qemu-img does not know (`snapshot.x=1`). */
export class SnapshotParamError extends Error {
  override readonly name = 'SnapshotParamError';

  constructor(
    readonly parameter: string,
    readonly text: string,
  ) {
    super(`Invalid parameter '${parameter}'`);
  }
}

/**
 * Parses qemu-img's (and qemu-nbd's) `-l` value: a value starting with `snapshot.` is a list of `snapshot.name=S`
 * and `snapshot.id=I` (either or both); anything else is a bare id or name (matched as `-s` matches: id first),
 * even with a `=` in it, as QEMU takes it.
 */
export function parseSnapshotParam(text: string): string | { id?: string; name?: string } {
  if (!text.startsWith('snapshot.')) return text;
  const key: { id?: string; name?: string } = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const field = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (field === 'snapshot.name') key.name = value;
    else if (field === 'snapshot.id') key.id = value;
    else throw new SnapshotParamError(field, text);
  }
  return key;
}

/**
 * parseSnapshotParam for a command: a value it cannot parse ends the command with qemu-img's two lines (`quote`:
 * how the value is quoted in the second; qemu-nbd quotes it `like this').
 */
export function parseSnapshotParamOrExit(text: string, quote: (value: string) => string = (value) => `'${value}'`): string | { id?: string; name?: string } {
  try {
    return parseSnapshotParam(text);
  } catch (error) {
    if (!(error instanceof SnapshotParamError)) throw error;
    throw new ExitError(`${error.message}\nqcow: Failed in parsing snapshot param ${quote(error.text)}`, 1);
  }
}
