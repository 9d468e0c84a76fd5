import { isDiskError, type BlockDevice } from '@q/raw';
import { getopt, hasFlag, lastValue, allValues } from '../getopt.js';
import { hexDump, ioReport } from '../io-report.js';
import { parseInteger, parseSize } from '../numbers.js';
import { openImage } from '../open-source.js';
import { UsageError } from '../usage-error.js';
import { describeError } from '../describe-error.js';

export const ioUsage = 'io [-r] [-f fmt] [-U] [--untrusted] -c COMMAND [-c COMMAND]... FILE';

/**
 * `qcow io`: a qemu-io subset driven by `-c` commands, printing qemu-io's lines. Every command runs even after one
 * fails; the exit code is 1 when any failed (a pattern mismatch included).
 */
export async function ioCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'rf:c:Uhnt:kd:i:', long: { 'read-only': false, 'force-share': false, 'image-opts': false, cache: true, untrusted: false } });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const readOnly = hasFlag(parsed, 'r', 'read-only');
  let device: BlockDevice;
  try {
    device = await openImage(file, { format: lastValue(parsed, 'f'), writable: !readOnly, forceShare: hasFlag(parsed, 'U', 'force-share'), untrusted: hasFlag(parsed, 'untrusted') });
  } catch (error) {
    // qemu-io names the device once: "can't open device X: Failed to get "write" lock".
    const reason = isDiskError(error) && (error.code === 'E_LOCKED' || error.file === undefined) ? error.message : describeError(error, file);
    process.stderr.write(`qcow io: can't open device ${file}: ${reason}\n`);
    return 1;
  }
  let failed = false;
  try {
    for (const command of allValues(parsed, 'c')) {
      const ok = await runCommand(device, command, readOnly);
      failed ||= !ok;
    }
  } finally {
    await device.close();
  }
  return failed ? 1 : 0;
}

async function runCommand(device: BlockDevice, line: string, readOnly: boolean): Promise<boolean> {
  const [name, ...words] = line.trim().split(/\s+/);
  try {
    switch (name) {
      case 'read':
        return await readCommand(device, words);
      case 'write':
        return await writeCommand(device, words);
      case 'discard':
        return await discardCommand(device, words);
      case 'flush':
        await device.flush();
        return true;
      case 'sleep':
        return await sleepCommand(words);
      default:
        process.stderr.write(`qcow io: command "${name ?? ''}" not found\n`);
        return false;
    }
  } catch (error) {
    if (isDiskError(error) && error.code === 'E_READ_ONLY') {
      process.stderr.write(`qcow io: ${error.message}\n`);
      return false;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`qcow io: ${name}: ${error.message}\n`);
      return false;
    }
    // qemu-io prints this on stdout; here failures go to stderr, one line, like every other error.
    process.stderr.write(`${name} failed: ${describeError(error, device.name)}\n`);
    return false;
  }
}

async function readCommand(device: BlockDevice, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:vqCbl:s:p' });
  const [offsetText, lengthText, ...extra] = parsed.operands;
  if (offsetText === undefined || lengthText === undefined || extra.length > 0) {
    throw new UsageError('usage: read [-P pattern [-s off] [-l len]] [-v] [-q] off len');
  }
  const offset = parseSize(offsetText, 'offset');
  const length = parseSize(lengthText, 'length');
  const patternText = lastValue(parsed, 'P');
  const pattern = patternText === undefined ? undefined : parseInteger(patternText, 'pattern') & 0xff;
  // -s and -l narrow the pattern check to part of what is read (qemu-io checks the range before reading).
  const checkStartText = lastValue(parsed, 's');
  const checkLengthText = lastValue(parsed, 'l');
  const checkStart = checkStartText === undefined ? 0 : parseSize(checkStartText, 'pattern offset');
  const checkLength = checkLengthText === undefined ? length - checkStart : parseSize(checkLengthText, 'pattern length');
  if (checkStart + checkLength > length) {
    process.stdout.write('pattern verification range exceeds end of read data\n');
    return false;
  }
  const quiet = hasFlag(parsed, 'q');
  const bytes = new Uint8Array(length);
  const started = performance.now();
  await device.read(bytes, offset);
  const seconds = (performance.now() - started) / 1000;
  let ok = true;
  if (pattern !== undefined && bytes.subarray(checkStart, checkStart + checkLength).some((byte) => byte !== pattern)) {
    process.stdout.write(`Pattern verification failed at offset ${offset + checkStart}, ${checkLength} bytes\n`);
    ok = false;
  }
  if (hasFlag(parsed, 'v')) process.stdout.write(hexDump(bytes, offset));
  if (!quiet) {
    process.stdout.write(`read ${length}/${length} bytes at offset ${offset}\n`);
    process.stdout.write(ioReport(length, 1, seconds) + '\n');
  }
  return ok;
}

/** qemu-io's write: `-P pattern` (default 0xcd), `-z` writes zeroes (`-u` may unmap), `-q` quiet. */
async function writeCommand(device: BlockDevice, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:zuqbcCfn' });
  const [offset, length] = offsetAndLength(parsed.operands, 'write [-P pattern | -z [-u]] [-q] off len');
  if (hasFlag(parsed, 'c')) throw new UsageError('compressed writes (-c) are not supported');
  const started = performance.now();
  if (hasFlag(parsed, 'z')) {
    await device.writeZeroes(offset, length, { unmap: hasFlag(parsed, 'u') });
  } else {
    const patternText = lastValue(parsed, 'P');
    const pattern = patternText === undefined ? 0xcd : parseInteger(patternText, 'pattern') & 0xff;
    await device.write(new Uint8Array(length).fill(pattern), offset);
  }
  report('wrote', offset, length, started, hasFlag(parsed, 'q'));
  return true;
}

/** qemu-io's discard: advisory, prints "discard N/N bytes at offset X". */
async function discardCommand(device: BlockDevice, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'qC' });
  const [offset, length] = offsetAndLength(parsed.operands, 'discard [-q] off len');
  const started = performance.now();
  await device.discard(offset, length);
  report('discard', offset, length, started, hasFlag(parsed, 'q'));
  return true;
}

/** qemu-io's sleep: waits N milliseconds with the image open (and locked), for scripts that hold an image. */
async function sleepCommand(words: string[]): Promise<boolean> {
  const [text, ...extra] = words;
  if (text === undefined || extra.length > 0) throw new UsageError('usage: sleep milliseconds');
  const milliseconds = parseInteger(text, 'milliseconds');
  await new Promise((resolve) => setTimeout(resolve, milliseconds));
  return true;
}

function offsetAndLength(operands: string[], usage: string): [number, number] {
  const [offsetText, lengthText, ...extra] = operands;
  if (offsetText === undefined || lengthText === undefined || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  return [parseSize(offsetText, 'offset'), parseSize(lengthText, 'length')];
}

function report(verb: string, offset: number, length: number, started: number, quiet: boolean): void {
  if (quiet) return;
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${verb} ${length}/${length} bytes at offset ${offset}\n`);
  process.stdout.write(ioReport(length, 1, seconds) + '\n');
}
