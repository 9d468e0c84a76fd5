import { parseSize } from '../numbers.js';
import { ExitError } from '../usage-error.js';

/** qemu-img dd's operands: sizes in bytes (bs) and in blocks (count, skip), as given. */
export interface DdOperands {
  input: string;
  output: string;
  blockSize: number;
  /** Blocks to copy; undefined copies to the end of the input. */
  count: number | undefined;
  skip: number;
}

/** qemu-img dd's largest block: what a C int holds. */
const MAX_BLOCK_SIZE = 2 ** 31 - 1;

const SUFFIX_HINT = 'You may use k, M, G, T, P or E suffixes for\nqcow: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.';

/**
 * Parses `key=value` operands left to right, as qemu-img dd: the first bad one is reported (an unknown key by its
 * name, a bad number with qemu-img's two-line suffix hint), a repeated key keeps its last value, and only then are
 * `if` and `of` required.
 */
export function parseDdOperands(operands: readonly string[]): DdOperands {
  let input: string | undefined;
  let output: string | undefined;
  let blockSize = 512;
  let count: number | undefined;
  let skip = 0;
  for (const operand of operands) {
    const eq = operand.indexOf('=');
    const key = eq < 0 ? operand : operand.slice(0, eq);
    const value = operand.slice(eq + 1);
    switch (eq < 0 ? '' : key) {
      case 'if':
        input = value;
        break;
      case 'of':
        output = value;
        break;
      case 'bs':
        blockSize = ddNumber('bs', value);
        if (blockSize < 1 || blockSize > MAX_BLOCK_SIZE) throw new ExitError(`Invalid bs specified. Must be between 1 and ${MAX_BLOCK_SIZE}.`, 1);
        break;
      case 'count':
        count = ddNumber('count', value);
        break;
      case 'skip':
        skip = ddNumber('skip', value);
        break;
      default:
        throw new ExitError(`unrecognized operand ${key}`, 1);
    }
  }
  if (input === undefined || output === undefined) throw new ExitError('Must specify both input and output files', 1);
  return { input, output, blockSize, count, skip };
}

function ddNumber(key: string, text: string): number {
  try {
    return parseSize(text, key);
  } catch {
    throw new ExitError(`Invalid ${key} specified. ${SUFFIX_HINT}`, 1);
  }
}

/**
 * The output's size before rounding, as qemu-img dd 7.2 computes it: the input (its size rounded up to 512, as
 * QEMU's block layer sees every image) cut to `count` blocks, less the skipped blocks. Note the quirk it keeps:
 * with count, the skipped blocks come off the count (`bs=1k count=7 skip=2` copies 5 KiB), not off the input.
 * Negative when the skip passes that end.
 */
export function ddOutputBytes(operands: DdOperands, inputSize: number): number {
  const input = Math.ceil(inputSize / 512) * 512;
  const end = operands.count === undefined ? input : Math.min(operands.count * operands.blockSize, input);
  return end - operands.skip * operands.blockSize;
}
