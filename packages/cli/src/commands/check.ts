import { probeFormat } from '@q/backing';
import { checkExitCode, checkLayout, formatCheckHuman, formatCheckJson, readImageLayout, type ImageLayout, type RepairMode } from '@q/check';
import { isDiskError, type BlockFile } from '@q/raw';
import { imageFileLocks, toolUser } from '@q/vkd';
import { cliBlockingStore, cliStore } from '../cli-store.js';
import { describeError } from '../describe-error.js';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeErr, writeOut } from '../process-output.js';
import { probedRawWarning } from '../open-source.js';

/** qemu-img's exit code for a format without a check (raw). */
const NO_CHECK_EXIT = 63;

/**
 * `qcow check`: qemu-img check for qcow2. Diagnostics go to stderr as they are found, the verdict to stdout;
 * exit 0 clean (or repaired), 1 the check could not run or finish, 2 corruptions, 3 leaks only. `-r` opens the
 * image read-write and repairs leaks (`leaks`) or everything repairable (`all`).
 */
export async function checkCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'f:r:T:hqU',
    long: { output: true, repair: true, format: true, object: true, 'image-opts': false, 'force-share': false, quiet: false },
  });
  const output = lastValue(parsed, 'output') ?? 'human';
  if (output !== 'human' && output !== 'json') throw new ExitError('--output must be used with human or json as argument.', 1);
  const repairText = lastValue(parsed, 'r', 'repair');
  if (repairText !== undefined && repairText !== 'leaks' && repairText !== 'all') {
    throw new UsageError(`Unknown option value for -r (expecting 'leaks' or 'all'): ${repairText}`);
  }
  const repair = repairText as RepairMode | undefined;
  const [path, ...extra] = parsed.operands;
  if (path === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const format = lastValue(parsed, 'f', 'format');
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') throw new ExitError(`Could not open '${path}': Unknown driver '${format}'`, 1);
  const quiet = hasFlag(parsed, 'q', 'quiet');

  const forceShare = hasFlag(parsed, 'U', 'force-share');
  if (forceShare && repair !== undefined) throw new ExitError(`Could not open '${path}': force-share=on can only be used with read-only images`, 1);
  const file = await openImageFile(path, repair !== undefined);
  let kind: string;
  try {
    kind = format ?? (await probeFormat(file));
    // Opened for repair, a raw file whose format was guessed gets qemu-img's warning (nothing is written to it).
    if (repair !== undefined && format === undefined && kind === 'raw') writeErr(probedRawWarning(path));
    // Locked as QEMU locks it, by format: a qcow2 file refuses writers, a raw one (no checks) only reads.
    await file.lock?.(imageFileLocks(kind === 'qcow2' ? 'qcow2' : 'raw', toolUser(repair !== undefined), repair !== undefined, forceShare));
  } catch (error) {
    await file.close();
    if (isDiskError(error) && error.code === 'E_LOCKED') throw new ExitError(`Could not open '${path}': ${error.message}`, 1);
    throw error;
  }
  try {
    const layout = await openLayout(file, path, kind);
    for (const warning of layout.warnings) writeErr(`qcow: warning: ${warning}\n`);
    await requireDataFile(layout, path);
    let report;
    try {
      report = await checkLayout(layout, { repair, name: path, onMessage: (line, kind) => void writeErr(`${kind === 'report' ? 'qcow: ' : ''}${line}\n`) });
    } catch (error) {
      // As qemu-img: the check started but could not finish; nothing is printed on stdout.
      throw new ExitError(`Check failed: ${isDiskError(error) ? error.message : describeError(error)}`, 1);
    }
    if (!quiet) writeOut(output === 'json' ? formatCheckJson(report) : formatCheckHuman(report));
    const code = checkExitCode(report);
    if (code === 1) writeErr('qcow: Check failed\n');
    return code;
  } finally {
    await file.close();
  }
}

async function openImageFile(path: string, writable: boolean): Promise<BlockFile> {
  try {
    return await cliBlockingStore().open(path, { writable });
  } catch (error) {
    throw new ExitError(`Could not open '${path}': Could not open '${path}': ${reason(error)}`, 1);
  }
}

/**
 * Reads the image's layout, refusing what qemu-img refuses: raw files (no checks) and images QEMU cannot open; and
 * what only QEMU opens (another format's header).
 */
async function openLayout(file: BlockFile, path: string, format: string): Promise<ImageLayout> {
  if (format === 'raw') throw new ExitError('This image format does not support checks', NO_CHECK_EXIT);
  // qcow version 1 goes on to the header's reader, which names the version it cannot check.
  if (format !== 'qcow2' && format !== 'qcow') throw new ExitError(`Could not open '${path}': Unknown or unsupported format '${format}'`, 1);
  try {
    return await readImageLayout(file);
  } catch (error) {
    throw new ExitError(`Could not open '${path}': ${isDiskError(error) ? error.message : describeError(error)}`, 1);
  }
}

/**
 * QEMU opens the external data file with the image, so a missing one fails the check before it starts. The
 * check itself never reads guest data. The name is looked up beside the image first, then as QEMU does
 * (relative to the current directory).
 */
async function requireDataFile(layout: ImageLayout, path: string): Promise<void> {
  const name = layout.extensions.dataFile;
  if (!layout.geometry.externalDataFile || name === undefined) return;
  const store = cliStore();
  const beside = store.resolve(path, name);
  const chosen = (await store.exists(beside)) || !(await store.exists(name)) ? beside : name;
  try {
    await (await store.open(chosen)).close();
  } catch (error) {
    throw new ExitError(`Could not open '${path}': Could not open '${name}': ${reason(error)}`, 1);
  }
}

/** Why a file could not be opened, in QEMU's words (the errno text alone). */
function reason(error: unknown): string {
  return isDiskError(error) ? error.message.replace(/^open failed: /, '') : describeError(error);
}
