/** Granularity of zero detection when writing a sparse target: qemu-img convert's default `-S 4k`. */
export const SPARSE_BLOCK = 4096;

/**
 * Splits `bytes` into runs that hold data, skipping SPARSE_BLOCK-sized blocks that are all zeros, so a sparse
 * target is never written with zeros it already reads back. One 32-bit view serves the whole buffer, and a block
 * is abandoned at its first non-zero word (data blocks cost a few reads, zero blocks a scan).
 */
export function dataRuns(bytes: Uint8Array): Array<[start: number, end: number]> {
  const runs: Array<[number, number]> = [];
  const aligned = bytes.byteOffset % 4 === 0;
  const words = aligned ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2) : undefined;
  let runStart = -1;
  for (let at = 0; at < bytes.length; at += SPARSE_BLOCK) {
    const end = Math.min(bytes.length, at + SPARSE_BLOCK);
    const zero = words !== undefined && end - at === SPARSE_BLOCK ? zeroWords(words, at >>> 2, end >>> 2) : zeroBytes(bytes, at, end);
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      runs.push([runStart, at]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, bytes.length]);
  return runs;
}

function zeroWords(words: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (words[i] !== 0) return false;
  return true;
}

function zeroBytes(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Whether every byte of `bytes` is zero (a whole write of zeros, for detect-zeroes). */
export function isAllZero(bytes: Uint8Array): boolean {
  // The unaligned head and the tail byte by byte; the rest four bytes at a time (32-bit words: no BigInt on the
  // request path), stopping at the first non-zero word.
  const head = Math.min(bytes.length, (4 - (bytes.byteOffset % 4)) % 4);
  if (!zeroBytes(bytes, 0, head)) return false;
  const count = (bytes.length - head) >>> 2;
  if (count > 0 && !zeroWords(new Int32Array(bytes.buffer, bytes.byteOffset + head, count), 0, count)) return false;
  return zeroBytes(bytes, head + count * 4, bytes.length);
}
