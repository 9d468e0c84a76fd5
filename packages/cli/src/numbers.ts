import { ExitError, UsageError } from './usage-error.js';

const SUFFIXES: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/**
 * Parses a size or offset as qemu-io and qemu-img do (cvtnum): decimal, `0x` hex, or a number with a binary suffix
 * (k, M, G, T, P, E; case-insensitive), fractional numbers allowed with a suffix ("1.5G").
 */
export function parseSize(text: string, what = 'size'): number {
  const match = /^\s*(0x[0-9a-f]+|\d+(?:\.\d+)?|\.\d+)\s*([bkmgtpe]?)\s*$/i.exec(text);
  if (match === null) throw new UsageError(`invalid ${what} '${text}'`);
  const [, digits, suffix] = match;
  const base = digits!.toLowerCase().startsWith('0x') ? parseInt(digits!, 16) : Number(digits);
  if (digits!.toLowerCase().startsWith('0x') && suffix !== '') throw new UsageError(`invalid ${what} '${text}'`);
  const value = base * SUFFIXES[suffix!.toLowerCase()]!;
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) throw new UsageError(`${what} '${text}' is too large`);
  if (!Number.isInteger(value)) throw new UsageError(`invalid ${what} '${text}': not a whole number of bytes`);
  return value;
}

/** A plain integer in decimal or 0x hex (pattern bytes, counts). */
export function parseInteger(text: string, what: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`invalid ${what} '${text}'`);
  return value;
}

/**
 * Formats a byte count as QEMU's size_to_str does: the largest binary unit that keeps the number under 1000,
 * printed with three significant digits ("64 KiB", "1 GiB", "0.977 MiB").
 */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let exponent = 0;
  if (bytes > 0) exponent = Math.floor((Math.floor(Math.log2(bytes / (1000 / 1024))) + 1 - 1) / 10);
  exponent = Math.min(Math.max(exponent, 0), units.length - 1);
  return `${formatG3(bytes / 2 ** (exponent * 10))} ${units[exponent]}`;
}

/** C's "%0.3g": three significant digits, trailing zeros dropped. */
export function formatG3(value: number): string {
  if (value === 0) return '0';
  const text = value.toPrecision(3);
  if (text.includes('e')) return text;
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** qemu-img's words for a size its suffix parser cannot read, naming what it was for (`rate limit`, ...). */
export function suffixMessage(what: string): string {
  return `Invalid ${what} specified. You may use k, M, G, T, P or E suffixes for\nqcow: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.`;
}

/** A size with qemu-img's suffixes, `what` it is for named in qemu-img's two lines when it cannot be read. */
export function parseSuffixedSize(text: string, what: string): number {
  try {
    return parseSize(text, what);
  } catch {
    throw new ExitError(suffixMessage(what), 1);
  }
}

/** `-r` of commit and convert: a size with qemu-img's suffixes (checked as qemu-img does; nothing is rate limited). */
export function checkRateLimit(text: string): void {
  parseSuffixedSize(text, 'rate limit');
}

/**
 * A `size` parameter (resize's operand, `-o size=`), with qemu-img's three-line complaint for a malformed one.
 * qemu-img rounds a fractional size to the nearest byte: "0.3k" is 307, "0.7k" 717, "11.1M" 11639194.
 */
export function parseSizeParameter(text: string): number {
  try {
    const fraction = /^(\d*\.\d+)([kmgtpe])$/i.exec(text.trim());
    if (fraction !== null) return Math.round(Number(fraction[1]) * parseSize(`1${fraction[2]}`, 'size'));
    return parseSize(text, 'size');
  } catch {
    throw new ExitError(
      "Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
      1,
    );
  }
}

/**
 * A whole string as C's strtol with base 0 reads it: leading blanks, a sign, then 0x hex, 0 octal or decimal
 * (" 4", "+4", "0x10", "017"); undefined for anything else ("4x", "1k", "").
 */
export function parseStrtol(text: string): number | undefined {
  const match = /^\s*([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$/i.exec(text);
  if (match === null) return undefined;
  const digits = match[2]!;
  const magnitude = /^0x/i.test(digits) ? parseInt(digits, 16) : digits.startsWith('0') ? parseInt(digits, 8) : Number(digits);
  return match[1] === '-' ? -magnitude : magnitude;
}
