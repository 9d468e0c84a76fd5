/**
 * The few printf conversions `qemu-img check` uses in its messages, reproduced so that our lines read exactly as
 * QEMU's do (scripts and people compare them).
 */

/** `%lx`: lowercase hex without prefix. */
export function hex(value: number | bigint): string {
  return value.toString(16);
}

/** `%#lx` / `%#x`: "0x" prefix, except that zero prints as a bare "0". */
export function altHex(value: number | bigint): string {
  return value === 0 || value === 0n ? '0' : '0x' + value.toString(16);
}

/** A u64 from its two 32-bit halves, for printing entries whole (offsets and flags alike). */
export function u64(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * `%0.2f`: glibc prints the exact binary value rounded to nearest with ties to even, where JavaScript's
 * toFixed rounds ties up (3.125 prints as "3.12" in C, "3.13" in JS). Values here are percentages, so small.
 */
export function fixed2(value: number): string {
  // toFixed(60) is the exact decimal expansion of any double below 2^8 (at most 52 fraction bits).
  const exact = Math.abs(value).toFixed(60);
  const dot = exact.indexOf('.');
  const kept = exact.slice(0, dot + 3);
  const rest = exact.slice(dot + 3);
  const first = rest[0]!;
  const tail = rest.slice(1);
  const tie = first === '5' && /^0*$/.test(tail);
  const lastKept = Number(kept[kept.length - 1]);
  const up = first > '5' || (first === '5' && !tie) || (tie && lastKept % 2 === 1);
  const rounded = up ? incrementDecimal(kept) : kept;
  return (value < 0 ? '-' : '') + rounded;
}

/** Adds one unit in the last place to a decimal string like "12.99" (carrying into the integer part). */
function incrementDecimal(text: string): string {
  const digits = text.split('');
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i] === '.') continue;
    if (digits[i] === '9') {
      digits[i] = '0';
      continue;
    }
    digits[i] = String(Number(digits[i]) + 1);
    return digits.join('');
  }
  return '1' + digits.join('');
}
