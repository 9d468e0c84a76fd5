import { parseSize } from '../numbers.js';

/**
 * A qemu-io command that could not run, with the line qemu-io prints for it (its words; on stderr here, as every
 * error of `qcow`). The command counts as failed.
 */
export class IoCommandError extends Error {
  override readonly name = 'IoCommandError';
}

/** qemu-io's cvtnum: a byte count or offset; its one complaint for anything else. */
export function ioNumber(text: string): number {
  try {
    return parseSize(text);
  } catch {
    throw new IoCommandError(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${text}`);
  }
}

/**
 * qemu-io counts a command's words (options included) before parsing them; `max` -1 means no limit. Its message
 * names the count and the allowed range.
 */
export function checkArgumentCount(name: string, count: number, min: number, max: number): void {
  if (count >= min && (max < 0 || count <= max)) return;
  const expected =
    max < 0 ? `at least ${min} arguments` : min === max ? `${min} arguments` : `between ${min} and ${max} arguments`;
  throw new IoCommandError(`bad argument count ${count} to ${name}, expected ${expected}`);
}

/** `off len [len..]` of the vectored and aio commands: the offset and every buffer's length. */
export function offsetAndLengths(operands: readonly string[]): { offset: number; lengths: number[] } {
  const [offsetText, ...lengthTexts] = operands;
  if (offsetText === undefined || lengthTexts.length === 0) throw new IoCommandError('offset and at least one length are required');
  return { offset: ioNumber(offsetText), lengths: lengthTexts.map(ioNumber) };
}
