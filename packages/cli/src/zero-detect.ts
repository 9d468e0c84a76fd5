/** Granularity of zero detection when writing a sparse target: qemu-img convert's default `-S 4k`. */
export const SPARSE_BLOCK = 4096;

/** True when every byte of `bytes` is zero. */
export function isZero(bytes: Uint8Array): boolean {
  const head = bytes.byteOffset % 4 === 0 ? 0 : 4 - (bytes.byteOffset % 4);
  for (let i = 0; i < Math.min(head, bytes.length); i++) if (bytes[i] !== 0) return false;
  const words = Math.floor((bytes.length - Math.min(head, bytes.length)) / 4);
  const view = new Uint32Array(bytes.buffer, bytes.byteOffset + Math.min(head, bytes.length), words);
  for (let i = 0; i < words; i++) if (view[i] !== 0) return false;
  for (let i = Math.min(head, bytes.length) + words * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Splits `bytes` into runs that hold data, skipping SPARSE_BLOCK-sized blocks that are all zeros, so a sparse
 * target is never written with zeros it already reads back.
 */
export function dataRuns(bytes: Uint8Array): Array<[start: number, end: number]> {
  const runs: Array<[number, number]> = [];
  let runStart = -1;
  for (let at = 0; at < bytes.length; at += SPARSE_BLOCK) {
    const end = Math.min(bytes.length, at + SPARSE_BLOCK);
    const zero = isZero(bytes.subarray(at, end));
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      runs.push([runStart, at]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, bytes.length]);
  return runs;
}
