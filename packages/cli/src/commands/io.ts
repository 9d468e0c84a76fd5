import { createInterface } from 'node:readline';
import type { BlockDevice } from '@q/raw';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { openImage } from '../open-source.js';
import { UsageError } from '../usage-error.js';
import { openFailure } from '../describe-error.js';
import { isCacheMode } from '../devices/cache-mode-device.js';
import { ioCommandLines, runIoLine } from '../io/io-commands.js';
import { IoSession } from '../io/io-session.js';
import { writeErr } from '../process-output.js';

const PROMPT = 'qemu-io> ';

/**
 * `qcow io`: qemu-io's commands on one image, from `-c` options or, without them, from standard input (a prompt
 * on a terminal, and also when piped, as qemu-io prints it). Every command runs even after one fails; `quit`
 * stops. aio requests are drained, and their lines printed, before the image is closed.
 */
export async function ioCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'rf:c:Unt:kd:i:',
    long: { 'read-only': false, 'force-share': false, 'image-opts': false, cache: true, cmd: true, untrusted: false, discard: true, aio: true },
  });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const readOnly = hasFlag(parsed, 'r', 'read-only');
  // qemu-io judges its -t, -d and -i values before it opens anything (they change nothing here).
  const refusal = ioOptionRefusal(lastValue(parsed, 't', 'cache'), lastValue(parsed, 'd', 'discard'), lastValue(parsed, 'i', 'aio'));
  if (refusal !== undefined) {
    writeErr(`qcow io: ${refusal}\n`);
    return 1;
  }
  let device: BlockDevice;
  try {
    device = await openImage(file, { format: lastValue(parsed, 'f'), writable: !readOnly, forceShare: hasFlag(parsed, 'U', 'force-share'), untrusted: hasFlag(parsed, 'untrusted') });
  } catch (error) {
    // qemu-io's "can't open device X: " stands where qemu-img says "Could not open 'X': ".
    const failure = openFailure(error, file);
    const layer = `Could not open '${file}': `;
    const reason = failure.startsWith(layer) ? failure.slice(layer.length) : failure;
    writeErr(`qcow io: can't open device ${file}: ${reason}\n`);
    return 1;
  }
  const session = new IoSession(device, readOnly);
  const commands = parsed.options.filter((option) => option.name === 'c' || option.name === 'cmd').map((option) => option.value ?? '');
  let failed = false;
  try {
    const lines = commands.length > 0 ? commandList(commands) : promptedLines();
    for await (const line of lines) {
      const outcome = await runIoLine(session, line);
      failed ||= outcome === 'failed';
      if (outcome === 'quit') break;
    }
    await session.drainAio();
  } finally {
    await device.close();
  }
  return failed ? 1 : 0;
}

async function* commandList(commands: string[]): AsyncGenerator<string> {
  yield* commands;
}

/**
 * Lines from standard input, each after the prompt. qemu-io prints the prompt when stdin is not a terminal too
 * (scripts see "qemu-io> " before every command's output, and once more before the end); on a terminal readline
 * edits the line.
 */
async function* promptedLines(): AsyncGenerator<string> {
  const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const reader = createInterface({ input: process.stdin, output: terminal ? process.stdout : undefined, terminal, prompt: PROMPT });
  try {
    const prompt = (): void => (terminal ? reader.prompt() : void process.stdout.write(PROMPT));
    prompt();
    for await (const line of reader) {
      yield line;
      prompt();
    }
    // The prompt left waiting on a terminal gets its line ended, as a shell does on end of input.
    if (terminal) process.stdout.write('\n');
  } finally {
    reader.close();
  }
}

/** qemu-io's complaint about a -t (cache), -d (discard) or -i (aio) value it does not know, if any. */
function ioOptionRefusal(cache: string | undefined, discard: string | undefined, aio: string | undefined): string | undefined {
  if (cache !== undefined && !isCacheMode(cache)) return `Invalid cache option: ${cache}`;
  if (discard !== undefined && !['ignore', 'off', 'unmap', 'on'].includes(discard)) return `Invalid discard option: ${discard}`;
  if (aio !== undefined && !['threads', 'native', 'io_uring'].includes(aio)) return `Invalid aio option: ${aio}`;
  return undefined;
}
