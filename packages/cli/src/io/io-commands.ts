import { isDiskError } from '@q/raw';
import { describeError } from '../describe-error.js';
import { parseInteger } from '../numbers.js';
import { HelpRequest, UsageError } from '../usage-error.js';
import { checkArgumentCount, IoCommandError } from './io-args.js';
import { allocCommand, infoCommand, lengthCommand, mapCommand, truncateCommand } from './io-image-info.js';
import {
  aioFlushCommand,
  aioReadCommand,
  aioWriteCommand,
  discardCommand,
  readCommand,
  readvCommand,
  writeCommand,
  writevCommand,
} from './io-read-write.js';
import type { IoSession } from './io-session.js';
import { writeErr, writeOut } from '../process-output.js';

/** What a command line asks of the loop after it ran. */
export type IoOutcome = 'ok' | 'failed' | 'quit';

interface IoCommand {
  /** qemu-io's line in `help`: the arguments and a few words. */
  line: string;
  /** Word counts qemu-io accepts (options included; -1: no limit). */
  min: number;
  max: number;
  /** More for `help NAME`: what the command does and its options, a line each. */
  more: string;
  run(session: IoSession, words: string[]): Promise<boolean>;
}

const COMMANDS: Record<string, IoCommand> = {
  aio_flush: { line: 'aio_flush -- completes all outstanding aio requests', min: 0, max: 0, more: ' waits for every aio request and prints what each printed', run: aioFlushCommand },
  aio_read: {
    line: 'aio_read [-Cqv] [-P pattern] off len [len..] -- asynchronously reads a number of bytes',
    min: 2,
    max: -1,
    more: ' reads the range in one request; its lines are printed at aio_flush or exit\n -C, -- report statistics in a machine parsable format\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -v, -- dump buffer to standard output',
    run: aioReadCommand,
  },
  aio_write: {
    line: 'aio_write [-Cfquz] [-P pattern] off len [len..] -- asynchronously writes a number of bytes',
    min: 2,
    max: -1,
    more: ' writes the range in one request; its lines are printed at aio_flush or exit\n -P, -- use different pattern to fill file\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -q, -- quiet mode, do not show I/O statistics\n -u, -- with -z, allow unmapping\n -z, -- write zeroes',
    run: aioWriteCommand,
  },
  alloc: { line: 'alloc offset [count] -- checks if offset is allocated in the file', min: 1, max: 2, more: ' counts the bytes of [offset, offset + count) this layer holds (count: 512)', run: allocCommand },
  discard: { line: 'discard [-Cq] off len -- discards a number of bytes at a specified offset', min: 2, max: -1, more: ' -C, -- report statistics in a machine parsable format\n -q, -- quiet mode, do not show I/O statistics', run: discardCommand },
  flush: { line: 'flush -- flush all in-core file state to disk', min: 0, max: 0, more: '', run: async (s) => (await s.device.flush(), true) },
  help: { line: 'help [command] -- help for one or all commands', min: 0, max: 1, more: '', run: async (_s, words) => helpCommand(words) },
  info: { line: 'info -- prints information about the current file', min: 0, max: 0, more: '', run: infoCommand },
  length: { line: 'length -- gets the length of the current file', min: 0, max: 0, more: '', run: lengthCommand },
  map: { line: 'map  -- prints the allocated areas of a file', min: 0, max: 0, more: '', run: mapCommand },
  quit: { line: 'quit -- exit the program', min: 0, max: 0, more: '', run: async () => true },
  read: {
    line: 'read [-bCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset',
    min: 2,
    max: -1,
    more: ' -l, -- length for pattern verification (only with -P)\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -s, -- start offset for pattern verification (only with -P)\n -v, -- dump buffer to standard output',
    run: readCommand,
  },
  readv: {
    line: 'readv [-Cqv] [-P pattern] off len [len..] -- reads a number of bytes at a specified offset',
    min: 2,
    max: -1,
    more: ' -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -v, -- dump buffer to standard output',
    run: readvCommand,
  },
  sleep: { line: 'sleep -- waits for the given value in milliseconds', min: 1, max: 1, more: ' keeps the image open (and locked) meanwhile', run: sleepCommand },
  truncate: { line: 'truncate [-m prealloc_mode] off -- truncates the current file at the given offset', min: 1, max: 3, more: ' qcow2 images grow (to a multiple of 512); only -m off', run: truncateCommand },
  write: {
    line: 'write [-bCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset',
    min: 2,
    max: -1,
    more: ' -f, -- use Force Unit Access semantics\n -P, -- use different pattern to fill file (default 0xcd)\n -s, -- use a pattern file to fill the write buffer\n -C, -- report statistics in a machine parsable format\n -q, -- quiet mode, do not show I/O statistics\n -u, -- with -z, allow unmapping\n -z, -- write zeroes',
    run: writeCommand,
  },
  writev: {
    line: 'writev [-Cfq] [-P pattern] off len [len..] -- writes a number of bytes at a specified offset',
    min: 2,
    max: -1,
    more: ' -P, -- use different pattern to fill file (default 0xcd)\n -f, -- use Force Unit Access semantics\n -q, -- quiet mode, do not show I/O statistics',
    run: writevCommand,
  },
};

/** `help`: qemu-io's list (the commands qcow has) or one command's line and options. */
function helpCommand(words: string[]): boolean {
  const [name] = words;
  if (name === undefined) {
    const lines = Object.values(COMMANDS).map((command) => command.line);
    writeOut(`${lines.join('\n')}\n\nUse 'help commandname' for extended help.\n`);
    return true;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    writeOut(`command ${name} not found\n`);
    return false;
  }
  writeOut(`${command.line}\n${command.more === '' ? '' : `\n${command.more}\n`}\n`);
  return true;
}

async function sleepCommand(_session: IoSession, words: string[]): Promise<boolean> {
  const milliseconds = parseInteger(words[0]!, 'milliseconds');
  await new Promise((resolve) => setTimeout(resolve, milliseconds));
  return true;
}

/**
 * Commands whose own I/O lets qemu-io's event loop run the completions of earlier aio requests, so their lines come
 * first. (qemu-io's order depends on timing: an aio write that allocates may finish later; this is its usual order.)
 */
const RUNS_AIO_COMPLETIONS = new Set(['read', 'readv', 'write', 'writev', 'discard', 'flush', 'truncate']);

/** The command names, for `help` of `qcow io` itself. */
export function ioCommandLines(): string[] {
  return Object.values(COMMANDS).map((command) => command.line);
}

/**
 * Runs one qemu-io command line. Failures are reported here, one line each, and make the outcome 'failed'; the
 * loop goes on to the next line as qemu-io does.
 */
export async function runIoLine(session: IoSession, line: string): Promise<IoOutcome> {
  const words = line.trim().split(/\s+/).filter((word) => word !== '');
  const [name, ...args] = words;
  if (name === undefined) return 'ok';
  const command = COMMANDS[name];
  if (command === undefined) {
    writeErr(`command "${name}" not found\n`);
    return 'failed';
  }
  try {
    checkArgumentCount(name, args.length, command.min, command.max);
    if (RUNS_AIO_COMPLETIONS.has(name)) await session.drainAio();
    const ok = await command.run(session, args);
    return name === 'quit' ? 'quit' : ok ? 'ok' : 'failed';
  } catch (error) {
    if (error instanceof HelpRequest) return helpCommand([name]) ? 'ok' : 'failed';
    if (error instanceof IoCommandError) writeErr(`${error.message}\n`);
    else if (isDiskError(error) && error.code === 'E_READ_ONLY') writeErr(`qcow io: ${error.message}\n`);
    // qemu-io's words for EPERM (a probed raw image's first sector).
    else if (isDiskError(error) && error.code === 'E_NOT_PERMITTED') writeErr(`${name} failed: Operation not permitted\n`);
    else if (error instanceof UsageError) writeErr(`qcow io: ${name}: ${error.message}\n`);
    // qemu-io prints this on stdout; here failures go to stderr, one line, like every other error.
    else writeErr(`${name} failed: ${describeError(error, session.device.name)}\n`);
    return 'failed';
  }
}
