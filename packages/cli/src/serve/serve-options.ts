import { existsSync } from 'node:fs';
import type { ListenAddress } from '@q/nbd/node';
import { parseDiskSpec } from '@q/vkd';
import { isCacheMode, type CacheMode } from '../devices/cache-mode-device.js';
import type { DetectZeroesMode, DiscardMode } from '../devices/discard-mode-device.js';
import { getopt, hasFlag, lastValue, type ParsedArgs } from '../getopt.js';
import { TLS_LONG_OPTIONS } from '../serve-tls.js';
import { parseInteger } from '../numbers.js';
import { parseSnapshotParamOrExit } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';

/** Where `qcow serve` runs a disk's blocking calls (see serve.ts). */
export type AioMode = 'auto' | 'threads' | 'cothread';

/** Everything `qcow serve` was asked to do, checked. */
export interface ServeOptions {
  /** FILE as given (a path, or FILE@SNAP). */
  file: string;
  /** The file's path (FILE without its @SNAP). */
  path: string;
  format: string | undefined;
  readOnly: boolean;
  /** Writes go to a private overlay (`-s`, `--snapshot`, `--cow`). */
  cow: boolean;
  /** The internal snapshot to serve (`-l`), read-only. */
  snapshot: string | { id?: string; name?: string } | undefined;
  aio: AioMode;
  address: ListenAddress;
  exportName: string;
  description: string | undefined;
  /** Clients served at once (`-e`); 0: any number. */
  shared: number;
  /** Keep serving after the last client left (`-t`). */
  persistent: boolean;
  cache: CacheMode;
  discard: DiscardMode;
  detectZeroes: DetectZeroesMode;
  /** Run in the background once listening (`--fork`). */
  fork: boolean;
  pidFile: string | undefined;
  /** The image comes from someone untrusted (`--untrusted`: see @q/vkd's untrusted.ts). */
  untrusted: boolean;
  /** Offer the `qemu:allocation-depth` metadata context (`-A`). */
  allocationDepth: boolean;
  /** Persistent bitmaps to offer as `qemu:dirty-bitmap:NAME` (`-B NAME`, repeatable), in the order given. */
  bitmaps: string[];
  /** The parsed command line, for the TLS flags (serve-tls.ts reads and checks them). */
  parsed: ParsedArgs;
}

/** The IANA port of NBD; qemu-nbd's default too. */
const DEFAULT_PORT = 10809;

/** INT_MAX: qemu-nbd reads -e into a C int. */
const MAX_SHARED = 2 ** 31 - 1;

/**
 * Parses `qcow serve`'s arguments: qemu-nbd's flags, its defaults (one client, exit after it, writeback cache,
 * discard ignored) and its one-line messages for bad values (exit 1). Repeats follow qemu-nbd too: `-n`/`--cache`
 * and `--discard` may be given once, other options take their last value, and `--detect-zeroes=unmap` is checked
 * against the `--discard` given before it (qemu-nbd refuses `--detect-zeroes=unmap --discard=unmap`).
 */
export function parseServeOptions(args: readonly string[]): ServeOptions {
  const parsed = getopt(args, {
    short: 'rf:b:p:k:x:D:tsne:l:AB:',
    long: {
      'read-only': false,
      format: true,
      bind: true,
      port: true,
      socket: true,
      'export-name': true,
      description: true,
      persistent: false,
      snapshot: false,
      cow: false,
      aio: true,
      shared: true,
      nocache: false,
      cache: true,
      discard: true,
      'detect-zeroes': true,
      'load-snapshot': true,
      fork: false,
      'pid-file': true,
      untrusted: false,
      'allocation-depth': false,
      bitmap: true,
      ...TLS_LONG_OPTIONS,
    },
  });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');

  let shared = 1;
  let cache: CacheMode = 'writeback';
  let cacheGiven = false;
  let discard: DiscardMode = 'ignore';
  let discardGiven = false;
  let detectZeroes: DetectZeroesMode = 'off';
  for (const { name, value = '' } of parsed.options) {
    switch (name) {
      case 'e':
      case 'shared':
        shared = parseShared(value);
        break;
      case 'n':
      case 'nocache':
      case 'cache':
        if (cacheGiven) throw new ExitError('-n and --cache can only be specified once', 1);
        cacheGiven = true;
        if (name === 'cache' && !isCacheMode(value)) throw new ExitError(`Invalid cache mode \`${value}'`, 1);
        cache = name === 'cache' ? (value as CacheMode) : 'none';
        break;
      case 'discard':
        if (discardGiven) throw new ExitError('--discard can only be specified once', 1);
        discardGiven = true;
        discard = parseDiscard(value);
        break;
      case 'detect-zeroes':
        detectZeroes = parseDetectZeroes(value);
        if (detectZeroes === 'unmap' && discard !== 'unmap') {
          throw new ExitError('setting detect-zeroes to unmap is not allowed without setting discard operation to unmap', 1);
        }
        break;
    }
  }

  const socketPath = lastValue(parsed, 'k', 'socket');
  const portText = lastValue(parsed, 'p', 'port');
  const host = lastValue(parsed, 'b', 'bind') ?? '127.0.0.1';
  const port = portText === undefined ? DEFAULT_PORT : parseInteger(portText, 'port');
  if (port < 0 || port > 65535) throw new UsageError(`Invalid port '${portText ?? ''}'`);
  if (socketPath !== undefined && (portText !== undefined || lastValue(parsed, 'b', 'bind') !== undefined)) {
    throw new UsageError('-k cannot be combined with -b or -p');
  }

  // --cow (qemu-nbd's -s/--snapshot): clients may write, the image file never changes; FILE@SNAP then starts from
  // the snapshot. Without --cow a snapshot (FILE@SNAP or -l) is served read-only.
  const cow = hasFlag(parsed, 's', 'snapshot', 'cow');
  if (cow && hasFlag(parsed, 'r', 'read-only')) throw new UsageError('--cow cannot be combined with -r');
  const snapshotText = lastValue(parsed, 'l', 'load-snapshot');
  // qemu-nbd loads -l's snapshot into -s's empty overlay, where it never exists: it always fails. Say why instead.
  if (snapshotText !== undefined && cow) throw new ExitError('-l cannot be combined with -s (--snapshot, --cow)', 1);
  const snapshot = snapshotText === undefined ? undefined : parseLoadSnapshot(snapshotText);
  const spec = parseDiskSpec(file, existsSync);
  const readOnly = hasFlag(parsed, 'r', 'read-only') || snapshot !== undefined || (spec.snapshot !== undefined && !cow);

  const format = lastValue(parsed, 'f', 'format');
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') throw new UsageError(`Unknown file format '${format}'`);
  const aio = lastValue(parsed, 'aio') ?? 'auto';
  if (aio !== 'auto' && aio !== 'threads' && aio !== 'cothread') throw new ExitError(`Invalid aio mode '${aio}'`, 1);

  return {
    file,
    path: spec.path,
    format,
    readOnly,
    cow,
    snapshot,
    aio,
    address: socketPath === undefined ? { host, port } : { path: socketPath },
    exportName: lastValue(parsed, 'x', 'export-name') ?? '',
    description: lastValue(parsed, 'D', 'description'),
    shared,
    persistent: hasFlag(parsed, 't', 'persistent'),
    cache,
    discard,
    detectZeroes,
    fork: hasFlag(parsed, 'fork'),
    pidFile: lastValue(parsed, 'pid-file'),
    untrusted: hasFlag(parsed, 'untrusted'),
    allocationDepth: hasFlag(parsed, 'A', 'allocation-depth'),
    bitmaps: parsed.options.filter(({ name }) => name === 'B' || name === 'bitmap').map(({ value = '' }) => value),
    parsed,
  };
}

/**
 * `-e N` as qemu-nbd reads it (C's strtol with base 0: leading blanks, a sign, 0x hex, a leading 0 for octal;
 * nothing after the digits), 0 to INT_MAX. 0 means any number of clients.
 */
export function parseShared(text: string): number {
  const match = /^[\t\n\v\f\r ]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  const digits = match?.[2];
  let value = Number.NaN;
  if (digits !== undefined) {
    const magnitude = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits.startsWith('0') ? parseInt(digits, 8) : Number(digits);
    value = match?.[1] === '-' ? -magnitude : magnitude;
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_SHARED) throw new ExitError(`Invalid shared device number '${text}'`, 1);
  // -0 is 0.
  return value + 0;
}

/** qemu-nbd's --discard values: QEMU's own names and their on/off aliases. */
function parseDiscard(text: string): DiscardMode {
  if (text === 'ignore' || text === 'off') return 'ignore';
  if (text === 'unmap' || text === 'on') return 'unmap';
  throw new ExitError(`Invalid discard mode \`${text}'`, 1);
}

function parseDetectZeroes(text: string): DetectZeroesMode {
  if (text === 'off' || text === 'on' || text === 'unmap') return text;
  throw new ExitError(`Failed to parse detect_zeroes mode: invalid parameter value: ${text}`, 1);
}

/** `-l`'s SNAPSHOT_PARAM (`snapshot.id=I,snapshot.name=N` or a bare id or name), with qemu-nbd's message. */
function parseLoadSnapshot(text: string): string | { id?: string; name?: string } {
  return parseSnapshotParamOrExit(text, (value) => `\`${value}'`);
}
