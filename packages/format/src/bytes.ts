import { DiskError } from '@q/raw';

const TWO_32 = 0x1_0000_0000;

/**
 * Reads a big-endian u64 as a JS number. Offsets and sizes in qcow2 fit in 56 bits by the spec, but a value past
 * 2^53 cannot be represented exactly, so it is an error rather than a silently rounded offset.
 */
export function readU64(view: DataView, at: number, what: string): number {
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  if (hi >= 0x20_0000) {
    throw new DiskError('E_TOO_LARGE', `${what} 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is beyond 2^53`);
  }
  return hi * TWO_32 + lo;
}

/** A u64 read as a bigint, as a JS number: the same refusal as readU64 past 2^53. */
export function safeU64(value: bigint, what: string): number {
  if (value >= 1n << 53n) throw new DiskError('E_TOO_LARGE', `${what} 0x${value.toString(16)} is beyond 2^53`);
  return Number(value);
}

/** Reads a big-endian u64 as a bigint: for feature bitmasks, where every bit counts and none is an offset. */
export function readU64Big(view: DataView, at: number): bigint {
  return view.getBigUint64(at);
}

/** Writes a JS number (an offset or size, so a safe non-negative integer) as a big-endian u64. */
export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / TWO_32));
  view.setUint32(at + 4, value >>> 0);
}

/** Combines the two big-endian halves of a u64 known to be below 2^53. */
export function joinU64(hi: number, lo: number): number {
  return hi * TWO_32 + lo;
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function isAligned(value: number, alignment: number): boolean {
  return value % alignment === 0;
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

/** Decodes a name stored without a terminator (backing file, snapshot, bitmap names). */
export function decodeString(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function encodeString(text: string): Uint8Array {
  return encoder.encode(text);
}
