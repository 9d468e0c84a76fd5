import { DiskError } from '@q/raw';
import { joinU64, view } from './bytes.js';

/**
 * Refcount block entries of 2^order bits (spec: "Host cluster management"). Widths of 8 bits and more are
 * big-endian integers; narrower ones pack several per byte starting from the least significant bit, so with
 * 1-bit refcounts four clusters at refcount 1 read as 0x0F.
 */
export function getRefcount(block: Uint8Array, index: number, refcountOrder: number): number {
  const bits = 1 << refcountOrder;
  if (bits < 8) {
    const byte = block[(index * bits) >>> 3] ?? 0;
    const shift = (index * bits) & 7;
    return (byte >>> shift) & ((1 << bits) - 1);
  }
  // Byte reads, not a DataView: this runs for every cluster an allocation looks at, and a DataView per call was
  // 2.5 MB of garbage in a commit of 256 MiB.
  const at = index * (bits >>> 3);
  switch (bits) {
    case 8:
      return block[at]!;
    case 16:
      return (block[at]! << 8) | block[at + 1]!;
    case 32:
      return readU32(block, at);
    default: {
      const hi = readU32(block, at);
      if (hi >= 0x20_0000) throw new DiskError('E_TOO_LARGE', `refcount at index ${index} is beyond 2^53`);
      return joinU64(hi, readU32(block, at + 4));
    }
  }
}

/** Stores `value` (which must fit in the entry width) at `index`. */
export function setRefcount(block: Uint8Array, index: number, refcountOrder: number, value: number): void {
  const bits = 1 << refcountOrder;
  if (value < 0 || !Number.isSafeInteger(value) || (bits < 53 && value >= 2 ** bits)) {
    throw new DiskError('E_INVALID', `refcount ${value} does not fit in ${bits} bits`);
  }
  if (bits < 8) {
    const at = (index * bits) >>> 3;
    const shift = (index * bits) & 7;
    const mask = ((1 << bits) - 1) << shift;
    block[at] = ((block[at] ?? 0) & ~mask) | (value << shift);
    return;
  }
  const at = index * (bits >>> 3);
  switch (bits) {
    case 8:
      block[at] = value;
      return;
    case 16:
      block[at] = value >>> 8;
      block[at + 1] = value & 0xff;
      return;
    case 32:
      writeU32(block, at, value);
      return;
    default:
      writeU32(block, at, Math.floor(value / 0x1_0000_0000));
      writeU32(block, at + 4, value >>> 0);
  }
}

/**
 * Stores `value` at the `count` entries from `index`: setRefcount's checks once, then one loop (an allocation of a
 * run of clusters, such as preallocating a whole disk, sets millions of entries).
 */
export function setRefcountRun(block: Uint8Array, index: number, count: number, refcountOrder: number, value: number): void {
  if (count <= 0) return;
  setRefcount(block, index, refcountOrder, value);
  if (refcountOrder === 4) {
    for (let at = 2 * (index + 1), end = 2 * (index + count); at < end; at += 2) {
      block[at] = value >>> 8;
      block[at + 1] = value & 0xff;
    }
    return;
  }
  for (let i = 1; i < count; i++) setRefcount(block, index + i, refcountOrder, value);
}

/**
 * The first index from `from` on (below `entries`) whose refcount is 0, or -1 when there is none: the scan for
 * free clusters, without a call per entry for the common widths.
 */
export function findZeroRefcount(block: Uint8Array, from: number, entries: number, refcountOrder: number): number {
  if (refcountOrder === 4) {
    for (let index = from; index < entries; index++) if ((block[2 * index]! | block[2 * index + 1]!) === 0) return index;
    return -1;
  }
  for (let index = from; index < entries; index++) if (getRefcount(block, index, refcountOrder) === 0) return index;
  return -1;
}

function readU32(block: Uint8Array, at: number): number {
  return ((block[at]! << 24) >>> 0) + ((block[at + 1]! << 16) | (block[at + 2]! << 8) | block[at + 3]!);
}

function writeU32(block: Uint8Array, at: number, value: number): void {
  block[at] = value >>> 24;
  block[at + 1] = (value >>> 16) & 0xff;
  block[at + 2] = (value >>> 8) & 0xff;
  block[at + 3] = value & 0xff;
}

/** Largest refcount an entry of this width can hold. */
export function maxRefcount(refcountOrder: number): number {
  const bits = 1 << refcountOrder;
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

/**
 * Entry `index`, exact at every width: a 64-bit count past 2^53 comes back as a bigint where getRefcount throws
 * (`qcow check` must report such counts, not refuse the block). Pass the block's DataView when reading many
 * entries: this runs once per cluster of an image.
 */
export function getRefcountExact(block: Uint8Array, index: number, refcountOrder: number, blockView: DataView = view(block)): number | bigint {
  switch (refcountOrder) {
    case 4:
      return blockView.getUint16(index * 2);
    case 5:
      return blockView.getUint32(index * 4);
    case 6: {
      const hi = blockView.getUint32(index * 8);
      if (hi >= 0x20_0000) return blockView.getBigUint64(index * 8);
      return joinU64(hi, blockView.getUint32(index * 8 + 4));
    }
    case 3:
      return block[index]!;
    default: {
      const bits = 1 << refcountOrder;
      return (block[(index * bits) >>> 3]! >>> ((index * bits) & 7)) & ((1 << bits) - 1);
    }
  }
}

/** The first index from `from` on (below `entries`) whose refcount is not 0, or -1: findZeroRefcount's twin. */
export function findNonZeroRefcount(block: Uint8Array, from: number, entries: number, refcountOrder: number): number {
  if (refcountOrder === 4) {
    for (let index = from; index < entries; index++) if ((block[2 * index]! | block[2 * index + 1]!) !== 0) return index;
    return -1;
  }
  for (let index = from; index < entries; index++) if (getRefcount(block, index, refcountOrder) !== 0) return index;
  return -1;
}
