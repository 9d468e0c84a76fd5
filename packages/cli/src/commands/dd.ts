import { createQcow2, defaultCreateOptions } from '@q/qcow2';
import { alignedBytes, isDiskError, type BlockDevice } from '@q/raw';
import { imageFileLocks, LOCK_USERS, toolUser } from '@q/vkd';
import { cliStore } from '../cli-store.js';
import { describeError, fileOpenReason, isSystemFailure, openErrorReason, openFailure } from '../describe-error.js';
import { ddOutputBytes, parseDdOperands } from '../dd/dd-operands.js';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { openImage } from '../open-source.js';
import { ExitError } from '../usage-error.js';

/** Bytes moved per request: whole blocks, about 4 MiB, which gives the same bytes as bs at a time, faster. */
const CHUNK_TARGET = 4 * 1024 * 1024;

/**
 * `qcow dd`: qemu-img dd. The output is created with the size qemu-img gives it (rounded up to 512) and every block
 * is written, zeros included, as qemu-img does (a qcow2 output is fully allocated). Stricter than qemu-img 7.2 in
 * one case: a skip past the end of what would be copied is refused with exit 1 before anything is created
 * (qemu-img prints the same message, leaves an empty output and exits 0).
 */
export async function ddCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'hf:O:U', long: { 'image-opts': false, 'force-share': false, untrusted: false } });
  const operands = parseDdOperands(parsed.operands);
  const outputFormat = lastValue(parsed, 'O') ?? 'raw';
  if (outputFormat !== 'raw' && outputFormat !== 'qcow2') throw new ExitError('Unknown file format', 1);
  const inputFormat = lastValue(parsed, 'f');
  if (inputFormat !== undefined && inputFormat !== 'raw' && inputFormat !== 'qcow2') {
    throw new ExitError(`Could not open '${operands.input}': Unknown driver '${inputFormat}'`, 1);
  }
  let input: BlockDevice;
  try {
    input = await openImage(operands.input, {
      format: inputFormat,
      forceShare: hasFlag(parsed, 'U', 'force-share'),
      lockUser: LOCK_USERS.copySource,
      untrusted: hasFlag(parsed, 'untrusted'),
    });
  } catch (error) {
    // qemu-img names the file twice when the system refused it (the image layer, then the file layer).
    const system = isDiskError(error) && isSystemFailure(error);
    throw new ExitError(system ? `Could not open '${operands.input}': ${fileOpenReason(error, operands.input)}` : openFailure(error, operands.input), 1);
  }
  let output: BlockDevice | undefined;
  try {
    const bytes = ddOutputBytes(operands, input.size);
    if (bytes < 0) throw new ExitError(`${operands.input}: cannot skip to specified offset`, 1);
    output = await createOutput(operands.output, outputFormat, Math.ceil(bytes / 512) * 512);
    await copyBlocks(input, output, operands.skip * operands.blockSize, bytes, operands.blockSize);
    const finished = output;
    output = undefined;
    await finished.close();
  } finally {
    await Promise.allSettled([input.close(), output?.close()]);
  }
  return 0;
}

/** Creates (or empties) the output as qemu-img create would with no options, then opens it for writing. */
async function createOutput(path: string, format: 'raw' | 'qcow2', size: number): Promise<BlockDevice> {
  try {
    const file = await cliStore().open(path, { create: true, truncate: true, lock: imageFileLocks(format, format === 'raw' ? LOCK_USERS.creating : toolUser(true), true, false) });
    if (format === 'qcow2') {
      await createQcow2(file, defaultCreateOptions(size));
    } else {
      try {
        await file.truncate(size);
      } finally {
        await file.close();
      }
    }
  } catch (error) {
    throw new ExitError(`${path}: error while creating output image: Could not create '${path}': ${openErrorReason(error, path)}`, 1);
  }
  try {
    return await openImage(path, { format, writable: true });
  } catch (error) {
    throw new ExitError(`${path}: ${describeError(error, path)}`, 1);
  }
}

/**
 * Copies `length` bytes from `from` in the input to offset 0 of the output, in whole blocks. Past the input's end
 * (its last partial sector, which QEMU counts as part of the disk) the blocks read as zeros.
 */
async function copyBlocks(input: BlockDevice, output: BlockDevice, from: number, length: number, blockSize: number): Promise<void> {
  const chunk = blockSize * Math.max(1, Math.floor(CHUNK_TARGET / blockSize));
  const buffer = alignedBytes(Math.min(chunk, Math.max(length, 0)));
  for (let done = 0; done < length; done += chunk) {
    const part = buffer.subarray(0, Math.min(chunk, length - done));
    const at = from + done;
    const readable = Math.max(0, Math.min(part.length, input.size - at));
    part.fill(0, readable);
    if (readable > 0) await input.read(part.subarray(0, readable), at);
    await output.write(part, done);
  }
}
