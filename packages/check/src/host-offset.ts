/**
 * A host offset as damaged metadata may state it: table entries hold up to 56 bits (compressed descriptors up
 * to 61), more than a JS number holds exactly. The check must still print such offsets exactly and judge them
 * (they lie past the end of any file), so they stay numbers while they are safe and become bigints beyond.
 */
export type HostOffset = number | bigint;

const TWO_32 = 0x1_0000_0000;

/** Joins the (already masked) halves of a u64 offset. */
export function joinOffset(hi: number, lo: number): HostOffset {
  if (hi < 0x20_0000) return hi * TWO_32 + (lo >>> 0);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** A u64 offset read whole (a bigint), as a HostOffset: a number while it is safe. */
export function bigOffset(value: bigint): HostOffset {
  return value < 1n << 53n ? Number(value) : value;
}

/** `offset % modulus` for a small modulus (a cluster size). */
export function offsetRemainder(offset: HostOffset, modulus: number): number {
  return typeof offset === 'bigint' ? Number(offset % BigInt(modulus)) : offset % modulus;
}

/** The index of the cluster holding `offset`: always a safe number (offsets have at most 61 bits, clusters 9+). */
export function clusterOf(offset: HostOffset, clusterBits: number): number {
  return typeof offset === 'bigint' ? Number(offset >> BigInt(clusterBits)) : Math.floor(offset / 2 ** clusterBits);
}

export function offsetPlus(offset: HostOffset, add: number): HostOffset {
  if (typeof offset === 'bigint') return offset + BigInt(add);
  const sum = offset + add;
  return Number.isSafeInteger(sum) ? sum : BigInt(offset) + BigInt(add);
}

export function sameOffset(a: HostOffset, b: HostOffset): boolean {
  return typeof a === typeof b ? a === b : BigInt(a) === BigInt(b);
}

/** True when the offset is zero (either representation). */
export function isZeroOffset(offset: HostOffset): boolean {
  return offset === 0 || offset === 0n;
}
