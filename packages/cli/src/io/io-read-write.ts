import { checkWritable } from '@q/raw';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { readFileSync } from 'node:fs';
import { hexDump, ioMachineReport, ioReport } from '../io-report.js';
import { parseStrtol } from '../numbers.js';
import { IoCommandError, ioNumber, offsetAndLengths } from './io-args.js';
import { writeCompressedRange } from './io-compressed-write.js';
import type { IoSession } from './io-session.js';
import { writeOut } from '../process-output.js';

/** What a read or write printed, and whether its pattern check passed. */
interface Transfer {
  lines: string;
  ok: boolean;
}

/** qemu-io's pattern byte: a number as strtol reads it (decimal, 0x hex, 0 octal), 0 to 255. */
function patternByte(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = parseStrtol(text);
  if (value === undefined || value < 0 || value > 255) throw new IoCommandError(`${text} is not a valid pattern byte`);
  return value;
}

/** How a command reports its statistics: qemu-io's two lines, `-C`'s one machine-parsable line, or `-q`'s none. */
type Stats = 'human' | 'machine' | 'quiet';

/** -q wins over -C (qemu-io prints nothing for `write -q -C`). */
function statsOf(parsed: ReturnType<typeof getopt>): Stats {
  return hasFlag(parsed, 'q') ? 'quiet' : hasFlag(parsed, 'C') ? 'machine' : 'human';
}

function report(verb: 'read' | 'wrote', offset: number, length: number, started: number, stats: Stats): string {
  if (stats === 'quiet') return '';
  const seconds = (performance.now() - started) / 1000;
  if (stats === 'machine') return `${ioMachineReport(length, 1, seconds)}\n`;
  return `${verb} ${length}/${length} bytes at offset ${offset}\n${ioReport(length, 1, seconds)}\n`;
}

/** Reads `length` bytes and checks `pattern` over [checkStart, checkStart + checkLength). */
async function readAndCheck(
  session: IoSession,
  offset: number,
  length: number,
  options: { pattern: number | undefined; checkStart?: number; checkLength?: number; dump: boolean; stats: Stats },
): Promise<Transfer> {
  const bytes = new Uint8Array(length);
  const started = performance.now();
  await session.device.read(bytes, offset);
  let lines = '';
  let ok = true;
  const checkStart = options.checkStart ?? 0;
  const checkLength = options.checkLength ?? length - checkStart;
  if (options.pattern !== undefined && bytes.subarray(checkStart, checkStart + checkLength).some((byte) => byte !== options.pattern)) {
    lines += `Pattern verification failed at offset ${offset + checkStart}, ${checkLength} bytes\n`;
    ok = false;
  }
  if (options.dump) lines += hexDump(bytes, offset);
  return { lines: lines + report('read', offset, length, started, options.stats), ok };
}

/** `read [-bCqv] [-P pattern [-s off] [-l len]] off len`. */
export async function readCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:vqCbl:s:p' });
  const [offsetText, lengthText, ...extra] = parsed.operands;
  if (offsetText === undefined || lengthText === undefined || extra.length > 0) throw new IoCommandError('usage: read [-P pattern [-s off] [-l len]] [-v] [-q] off len');
  const offset = ioNumber(offsetText);
  const length = ioNumber(lengthText);
  // -s and -l narrow the pattern check to part of what is read (qemu-io checks the range before reading).
  const startText = lastValue(parsed, 's');
  const lengthOfCheck = lastValue(parsed, 'l');
  const checkStart = startText === undefined ? 0 : ioNumber(startText);
  const checkLength = lengthOfCheck === undefined ? length - checkStart : ioNumber(lengthOfCheck);
  if (checkStart + checkLength > length) {
    writeOut('pattern verification range exceeds end of read data\n');
    return false;
  }
  const pattern = lastValue(parsed, 'P');
  const result = await readAndCheck(session, offset, length, {
    pattern: pattern === undefined ? undefined : patternByte(pattern, 0),
    checkStart,
    checkLength,
    dump: hasFlag(parsed, 'v'),
    stats: statsOf(parsed),
  });
  writeOut(result.lines);
  return result.ok;
}

/** `readv [-Cqv] [-P pattern] off len [len..]`: one request over several buffers, reported as their sum. */
export async function readvCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:vqC' });
  const { offset, lengths } = offsetAndLengths(parsed.operands);
  const pattern = lastValue(parsed, 'P');
  const total = lengths.reduce((a, b) => a + b, 0);
  const result = await readAndCheck(session, offset, total, { pattern: pattern === undefined ? undefined : patternByte(pattern, 0), dump: hasFlag(parsed, 'v'), stats: statsOf(parsed) });
  writeOut(result.lines);
  return result.ok;
}

/** What a write puts down: `length` bytes of a pattern byte, of a pattern file's bytes repeated, or zeroes. */
interface WriteOptions {
  pattern: number;
  /** `-s FILE`: the file's bytes, repeated to the length (qemu-io's pattern file). */
  source?: Uint8Array;
  zero: boolean;
  unmap: boolean;
  fua: boolean;
  stats: Stats;
  /** `-c`: stored compressed (io-compressed-write.ts). */
  compressed?: boolean;
}

/** Writes `length` bytes of `pattern` (or of `source` repeated), or zeroes with `zero` (which may unmap). */
async function writeRange(session: IoSession, offset: number, length: number, options: WriteOptions): Promise<string> {
  const started = performance.now();
  const bytes = (): Uint8Array => (options.source === undefined ? new Uint8Array(length).fill(options.pattern) : repeated(options.source, length));
  if (options.zero) await session.device.writeZeroes(offset, length, { unmap: options.unmap });
  else if (options.compressed === true) await writeCompressedRange(session.device, bytes(), offset);
  else await session.device.write(bytes(), offset);
  // Force Unit Access: the write is durable before it is reported; a flush gives that here.
  if (options.fua) await session.device.flush();
  return report('wrote', offset, length, started, options.stats);
}

function repeated(source: Uint8Array, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += source.length) bytes.set(source.subarray(0, Math.min(source.length, length - at)), at);
  return bytes;
}

/**
 * `write [-bcCfnquz] [-P pattern | -s source_file] off len`: pattern 0xcd unless -P or -s; -z writes zeroes (-u may
 * unmap); -c stores the clusters compressed.
 */
export async function writeCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:zuqbcCfns:' });
  const [offsetText, lengthText, ...extra] = parsed.operands;
  if (offsetText === undefined || lengthText === undefined || extra.length > 0) throw new IoCommandError('usage: write [-P pattern | -s source_file | -z [-u]] [-q] off len');
  if (hasFlag(parsed, 'c') && hasFlag(parsed, 'f')) throw new IoCommandError('-f and -b or -c cannot be specified at the same time');
  if ([hasFlag(parsed, 'z'), lastValue(parsed, 'P') !== undefined, lastValue(parsed, 's') !== undefined].filter(Boolean).length > 1) {
    throw new IoCommandError('Only one of -z, -P, and -s can be specified at the same time');
  }
  if (hasFlag(parsed, 'u') && !hasFlag(parsed, 'z')) throw new IoCommandError('-u requires -z to be specified');
  const offset = ioNumber(offsetText);
  const length = ioNumber(lengthText);
  // qemu-io: a compressed write takes whole sectors (-z wins over -c: it writes zeroes).
  if (hasFlag(parsed, 'c')) {
    if (offset % 512 !== 0) throw new IoCommandError(`${offset} is not a sector-aligned value for 'offset'`);
    if (length % 512 !== 0) throw new IoCommandError(`${length} is not a sector-aligned value for 'count'`);
  }
  const sourceName = lastValue(parsed, 's');
  const options = { ...writeOptions(parsed), compressed: hasFlag(parsed, 'c') };
  if (sourceName !== undefined) options.source = patternFile(sourceName);
  writeOut(await writeRange(session, offset, length, options));
  return true;
}

/** A pattern file's bytes (qemu-io refuses an empty one, as it cannot fill a buffer). */
function patternFile(name: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new IoCommandError(`${name}: ${code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : (error as Error).message}`);
  }
  if (bytes.length === 0) throw new IoCommandError(`${name}: the pattern file is empty`);
  return bytes;
}

function writeOptions(parsed: ReturnType<typeof getopt>): WriteOptions {
  return { pattern: patternByte(lastValue(parsed, 'P'), 0xcd), zero: hasFlag(parsed, 'z'), unmap: hasFlag(parsed, 'u'), fua: hasFlag(parsed, 'f'), stats: statsOf(parsed) };
}

/** `writev [-Cfq] [-P pattern] off len [len..]`. */
export async function writevCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:qCf' });
  const { offset, lengths } = offsetAndLengths(parsed.operands);
  const total = lengths.reduce((a, b) => a + b, 0);
  writeOut(await writeRange(session, offset, total, { ...writeOptions(parsed), zero: false, unmap: false }));
  return true;
}

/** `aio_read [-Cqv] [-P pattern] off len [len..]`: started now, reported at aio_flush or exit. */
export async function aioReadCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:vqCi' });
  if (hasFlag(parsed, 'i')) throw new IoCommandError('invalid requests (-i) are not supported');
  const { offset, lengths } = offsetAndLengths(parsed.operands);
  const pattern = lastValue(parsed, 'P');
  const total = lengths.reduce((a, b) => a + b, 0);
  session.startAio(readAndCheck(session, offset, total, { pattern: pattern === undefined ? undefined : patternByte(pattern, 0), dump: hasFlag(parsed, 'v'), stats: statsOf(parsed) }));
  return true;
}

/** `aio_write [-Cfquz] [-P pattern] off len [len..]`. */
export async function aioWriteCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'P:zuqCfi' });
  if (hasFlag(parsed, 'i')) throw new IoCommandError('invalid requests (-i) are not supported');
  if (hasFlag(parsed, 'u') && !hasFlag(parsed, 'z')) throw new IoCommandError('-u requires -z to be specified');
  const { offset, lengths } = offsetAndLengths(parsed.operands);
  const total = lengths.reduce((a, b) => a + b, 0);
  // A write is refused on a read-only image when submitted, as qemu-io does, not when it completes.
  checkWritable(session.device);
  session.startAio(writeRange(session, offset, total, writeOptions(parsed)).then((lines) => ({ lines, ok: true })));
  return true;
}

/** `aio_flush`: waits for every aio request and prints what they printed. */
export async function aioFlushCommand(session: IoSession): Promise<boolean> {
  await session.drainAio();
  return true;
}

/** `discard [-Cq] off len`: advisory, prints "discard N/N bytes at offset X". */
export async function discardCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'qC' });
  const [offsetText, lengthText, ...extra] = parsed.operands;
  if (offsetText === undefined || lengthText === undefined || extra.length > 0) throw new IoCommandError('usage: discard [-q] off len');
  const offset = ioNumber(offsetText);
  const length = ioNumber(lengthText);
  const started = performance.now();
  await session.device.discard(offset, length);
  if (!hasFlag(parsed, 'q')) writeOut(`discard ${length}/${length} bytes at offset ${offset}\n${ioReport(length, 1, (performance.now() - started) / 1000)}\n`);
  return true;
}
