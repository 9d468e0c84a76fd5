import { chainStatus, type ChainExtent } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { openImageOrExit } from '../open-source.js';
import { UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

const CHUNK = 1024 * 1024;
const WINDOW = 2 ** 30;
const SECTOR = 512;

/**
 * `qcow compare`: exit 0 when the guest contents are equal, 1 with "Content mismatch at offset N!" (N the first
 * differing 512-byte sector), 2 on errors. A larger image matches when its extra bytes are zeros, as in qemu-img.
 * Ranges both chains know to be zero are never read.
 */
export async function compareCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'f:F:sqpUhT:', long: { 'force-share': false, 'image-opts': false, untrusted: false } });
  const [first, second, ...extra] = parsed.operands;
  if (first === undefined || second === undefined || extra.length > 0) throw new UsageError('Expecting two image file names');
  const quiet = hasFlag(parsed, 'q');
  const say = (line: string): void => void (quiet || writeOut(line + '\n'));
  const formatA = lastValue(parsed, 'f');
  const forceShare = hasFlag(parsed, 'U', 'force-share');
  const untrusted = hasFlag(parsed, 'untrusted');
  const a = await openImageOrExit(first, { format: formatA, forceShare, untrusted });
  try {
    const b = await openImageOrExit(second, { format: lastValue(parsed, 'F') ?? formatA, forceShare, untrusted });
    try {
      const strict = hasFlag(parsed, 's');
      if (strict && a.size !== b.size) {
        say('Strict mode: Image size mismatch!');
        return 1;
      }
      const common = Math.min(a.size, b.size);
      const mismatch = await compareCommon(a, b, common, strict);
      if (mismatch !== undefined) {
        say(mismatch.strict ? `Strict mode: Offset ${mismatch.offset} block status mismatch!` : `Content mismatch at offset ${mismatch.offset}!`);
        return 1;
      }
      if (a.size !== b.size) {
        say('Warning: Image size mismatch!');
        const larger = a.size > b.size ? a : b;
        const nonZero = await firstNonZero(larger, common, larger.size);
        if (nonZero !== undefined) {
          say(`Content mismatch at offset ${nonZero}!`);
          return 1;
        }
      }
      say('Images are identical.');
      return 0;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

async function compareCommon(
  a: BlockDevice,
  b: BlockDevice,
  end: number,
  strict: boolean,
): Promise<{ offset: number; strict: boolean } | undefined> {
  for (let window = 0; window < end; window += WINDOW) {
    const windowEnd = Math.min(end, window + WINDOW);
    const statusA = await chainStatus(a, window, windowEnd - window);
    const statusB = await chainStatus(b, window, windowEnd - window);
    for (const [start, stop, ea, eb] of overlay(statusA, statusB)) {
      if (strict && strictStatus(ea, a.size) !== strictStatus(eb, b.size)) return { offset: start, strict: true };
      if (ea.zero && eb.zero) continue;
      for (let at = start; at < stop; at += CHUNK) {
        const length = Math.min(CHUNK, stop - at);
        const [bytesA, bytesB] = await Promise.all([readRange(a, at, length, ea.zero), readRange(b, at, length, eb.zero)]);
        const diff = firstDifference(bytesA, bytesB);
        if (diff >= 0) return { offset: at + Math.floor(diff / SECTOR) * SECTOR, strict: false };
      }
    }
  }
  return undefined;
}

/**
 * The block status qemu-img compares in strict mode: allocation, zero, data, whether a host offset is known, and
 * whether the extent runs to the end of the image (so equal contents laid out differently can mismatch).
 */
function strictStatus(extent: ChainExtent, size: number): string {
  const eof = extent.offset + extent.length === size;
  return [extent.present, extent.zero, extent.data, extent.hostOffset !== undefined, eof].join();
}

async function firstNonZero(device: BlockDevice, start: number, end: number): Promise<number | undefined> {
  for (let window = start; window < end; window += WINDOW) {
    for (const extent of await chainStatus(device, window, Math.min(WINDOW, end - window))) {
      if (extent.zero) continue;
      for (let at = extent.offset; at < extent.offset + extent.length; at += CHUNK) {
        const bytes = await readRange(device, at, Math.min(CHUNK, extent.offset + extent.length - at), false);
        const index = bytes.findIndex((byte) => byte !== 0);
        if (index >= 0) return at + Math.floor(index / SECTOR) * SECTOR;
      }
    }
  }
  return undefined;
}

async function readRange(device: BlockDevice, offset: number, length: number, knownZero: boolean): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  if (!knownZero) await device.read(bytes, offset);
  return bytes;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Cuts two extent lists over the same range into pieces where neither changes. */
function* overlay(a: ChainExtent[], b: ChainExtent[]): Generator<[number, number, ChainExtent, ChainExtent]> {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ea = a[i]!;
    const eb = b[j]!;
    const start = Math.max(ea.offset, eb.offset);
    const stop = Math.min(ea.offset + ea.length, eb.offset + eb.length);
    if (stop > start) yield [start, stop, ea, eb];
    if (ea.offset + ea.length <= stop) i++;
    if (eb.offset + eb.length <= stop) j++;
  }
}
