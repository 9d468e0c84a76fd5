import { allValues, getopt, hasFlag, lastValue, type ParsedArgs } from '../getopt.js';
import { checkRateLimit, parseSizeParameter, parseStrtol, parseSuffixedSize } from '../numbers.js';
import { parseOptionList } from '../create-options.js';
import { parseSnapshotParamOrExit } from '../open-source.js';
import { checkCacheMode } from '../chain/chain-options.js';
import { isCacheMode } from '../devices/cache-mode-device.js';
import { ExitError } from '../usage-error.js';

/*
 * qemu-img convert judges its command line in three steps, and a line with several mistakes gets the message of
 * the first step that finds one (each order below was observed on qemu-img 7.2): the option loop (-S, -m, -l, -r,
 * in command-line order), the checks after it, then, once the sources are open, what concerns the output.
 */

export const CONVERT_GETOPT = {
  short: 'f:O:co:l:s:B:F:pqm:nUWS:t:T:hCr:',
  long: {
    'force-share': false,
    'target-is-zero': false,
    'image-opts': false,
    'target-image-opts': false,
    untrusted: false,
    salvage: false,
    bitmaps: false,
    'skip-broken-bitmaps': false,
  },
};

/** What the line says before anything is opened. */
export interface ConvertLine {
  parsed: ParsedArgs;
  /** Every operand but the last: read end to end. */
  sources: string[];
  destination: string;
  snapshot: string | { id?: string; name?: string } | undefined;
  sparseBytes: number;
  parallel: number;
  existing: boolean;
  targetIsZero: boolean;
  withBitmaps: boolean;
  skipBrokenBitmaps: boolean;
}

/** Steps one and two: the option loop and the checks after it. */
export function parseConvertLine(args: string[]): ConvertLine {
  const parsed = getopt(args, CONVERT_GETOPT);
  let sparseBytes = 4096;
  let parallel = 8;
  let snapshotParam: string | { id?: string; name?: string } | undefined;
  for (const { name, value } of parsed.options) {
    if (name === 'S') sparseBytes = parseSparseSize(value!);
    else if (name === 'm') parallel = parseCoroutines(value!);
    else if (name === 'l') snapshotParam = parseSnapshotParamOrExit(value!);
    else if (name === 'r') checkRateLimit(value!);
  }
  const sources = parsed.operands.slice(0, -1);
  const destination = parsed.operands[parsed.operands.length - 1];
  if (sources.length === 0 || destination === undefined) throw new ExitError('Must specify image file name', 1);
  const existing = hasFlag(parsed, 'n');
  const targetIsZero = hasFlag(parsed, 'target-is-zero');
  if (targetIsZero && !existing) throw new ExitError('--target-is-zero requires use of -n flag', 1);
  const withBitmaps = hasFlag(parsed, 'bitmaps');
  const skipBrokenBitmaps = hasFlag(parsed, 'skip-broken-bitmaps');
  if (skipBrokenBitmaps && !withBitmaps) throw new ExitError('Use of --skip-broken-bitmaps requires --bitmaps', 1);
  const sourceCache = lastValue(parsed, 'T');
  if (sourceCache !== undefined && !isCacheMode(sourceCache)) throw new ExitError(`Invalid source cache option: ${sourceCache}`, 1);
  const snapshot = snapshotParam ?? lastValue(parsed, 's');
  return { parsed, sources, destination, snapshot, sparseBytes, parallel, existing, targetIsZero, withBitmaps, skipBrokenBitmaps };
}

/** What the line says of the output, judged once the sources are open. */
export interface ConvertOutput {
  format: 'raw' | 'qcow2';
  createOptions: Map<string, string>;
  /** -B, or -o backing_file. */
  backing: string | undefined;
  backingFormat: string | undefined;
  compress: boolean;
  /** -t (default unsafe: qemu-img convert never syncs its target unless asked). */
  targetCache: string;
}

/** Step three. `several`: more than one source. */
export function checkConvertOutput(line: ConvertLine, several: boolean): ConvertOutput {
  const { parsed } = line;
  if (several && line.snapshot !== undefined) throw new ExitError('No support for concatenating multiple snapshot', 1);
  const format = lastValue(parsed, 'O') ?? 'raw';
  if (format !== 'raw' && format !== 'qcow2') throw new ExitError(`Unknown file format '${format}'`, 1);
  const optionTexts = allValues(parsed, 'o');
  const createOptions = parseOptionList(optionTexts);
  // -o size= is checked, then unused: the sources decide the output's size (as qemu-img does).
  const size = createOptions.get('size');
  if (size !== undefined) parseSizeParameter(size);
  const compress = hasFlag(parsed, 'c');
  const backing = lastValue(parsed, 'B') ?? createOptions.get('backing_file');
  if (format === 'raw') {
    // A raw file takes size (checked above) and preallocation (judged when the file is created).
    for (const key of createOptions.keys()) if (key !== 'size' && key !== 'preallocation') throw new ExitError(`Invalid parameter '${key}'`, 1);
    if (line.existing && createOptions.size > 0) throw new ExitError('-o has no effect when skipping image creation', 1);
    if (backing !== undefined) throw new ExitError("Backing file not supported for file format 'raw'", 1);
    if (compress) throw new ExitError('Compression not supported for this file format', 1);
  }
  if (several && backing !== undefined) throw new ExitError('Having a backing file for the target makes no sense when concatenating multiple input images', 1);
  if (several && line.withBitmaps) throw new ExitError('Copying bitmaps only possible with single source', 1);
  const targetCache = lastValue(parsed, 't') ?? 'unsafe';
  checkCacheMode(targetCache);
  return { format, createOptions, backing, backingFormat: lastValue(parsed, 'F') ?? createOptions.get('backing_fmt'), compress, targetCache };
}

/** `-S`: qemu-img takes multiples of 512 up to 16 MiB (0 turns zero detection off). */
function parseSparseSize(text: string): number {
  const bytes = parseSuffixedSize(text, 'buffer size for sparse output');
  if (bytes % 512 !== 0 || bytes > 16 * 1024 * 1024) {
    throw new ExitError(
      'Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output).',
      1,
    );
  }
  return bytes;
}

/** `-m`: strtol's base 0 over the whole value (" 4", "0x4", "017"), 1 to 16. */
function parseCoroutines(text: string): number {
  const value = parseStrtol(text);
  if (value === undefined || value < 1 || value > 16) throw new ExitError('Invalid number of coroutines. Allowed number of coroutines is between 1 and 16', 1);
  return value;
}
