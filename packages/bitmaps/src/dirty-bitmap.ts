import { DiskError } from '@q/raw';

/** The most bits a bitmap may have: QEMU refuses bitmaps whose data passes 512 MiB. */
export const MAX_BITMAP_BITS = 2 ** 32;

/** One run of a bitmap over the disk: `length` bytes from `offset`, all dirty or all clean. */
export interface DirtyExtent {
  offset: number;
  length: number;
  dirty: boolean;
}

/**
 * A dirty tracking bitmap in memory (spec: "Bitmaps", "Dirty tracking bitmaps"): bit n stands for the disk bytes
 * [n * granularity, (n + 1) * granularity). The bits are kept in the on-disk order (bit n is bit n % 8 of byte
 * n / 8, least significant first), so the bytes are the bitmap data as stored and serializing is a copy.
 */
export class DirtyBitmap {
  readonly size: number;
  readonly granularity: number;
  /** The bitmap data: ceil(bits / 8) bytes, unused tail bits always zero (the spec requires it on disk). */
  readonly bytes: Uint8Array;
  readonly bits: number;

  constructor(size: number, granularity: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new DiskError('E_INVALID', `invalid bitmap disk size ${size}`);
    if (!Number.isSafeInteger(granularity) || granularity < 1 || (granularity & (granularity - 1)) !== 0) {
      throw new DiskError('E_INVALID', `bitmap granularity ${granularity} is not a power of two`);
    }
    this.size = size;
    this.granularity = granularity;
    this.bits = Math.ceil(size / granularity);
    // QEMU's limit (512 MiB of bitmap data, 2^32 bits): it also keeps the bit arithmetic below in 32-bit range.
    if (this.bits > MAX_BITMAP_BITS) {
      throw new DiskError('E_TOO_LARGE', `a bitmap of ${this.bits} bits (${size} bytes at granularity ${granularity}) is too large`);
    }
    this.bytes = new Uint8Array(Math.ceil(this.bits / 8));
  }

  /** Marks every granule that `[offset, offset + length)` touches (a partial granule counts whole). */
  setRange(offset: number, length: number): void {
    const end = Math.min(this.size, offset + length);
    if (length <= 0 || offset >= end) return;
    this.setBits(Math.floor(offset / this.granularity), Math.ceil(end / this.granularity));
  }

  /** Marks the whole disk dirty (a change this bitmap cannot follow range by range, such as a snapshot switch). */
  setAll(): void {
    this.setBits(0, this.bits);
  }

  clear(): void {
    this.bytes.fill(0);
  }

  /** Clears every bit from `bit` on (what a shrinking disk drops, including the stored tail bits). */
  clearFrom(bit: number): void {
    if (bit >= this.bytes.length * 8) return;
    const byte = Math.floor(bit / 8);
    this.bytes[byte]! &= (1 << (bit % 8)) - 1;
    this.bytes.fill(0, byte + 1);
  }

  /** Whether the granule holding disk byte `offset` is dirty. */
  isDirty(offset: number): boolean {
    const bit = Math.floor(offset / this.granularity);
    return bit < this.bits && ((this.bytes[bit >>> 3]! >>> (bit & 7)) & 1) === 1;
  }

  /** Whether no bit is set (a bitmap nothing wrote to since it was cleared). */
  get empty(): boolean {
    return this.bytes.every((byte) => byte === 0);
  }

  /** Sets every bit set in `other` (qemu-img bitmap --merge); both must cover the same disk. */
  merge(other: DirtyBitmap): void {
    if (other.size !== this.size) throw new DiskError('E_INVALID', `cannot merge a bitmap of a ${other.size}-byte disk into one of ${this.size} bytes`);
    if (other.granularity === this.granularity) {
      for (let i = 0; i < this.bytes.length; i++) this.bytes[i]! |= other.bytes[i]!;
      return;
    }
    for (const extent of other.extents(0, other.size)) if (extent.dirty) this.setRange(extent.offset, extent.length);
  }

  /**
   * The runs of `[offset, offset + length)` (clipped to the disk), alternating dirty and clean, each starting and
   * ending on a granule boundary except where the asked range cuts it: what an NBD dirty-bitmap context reports.
   */
  extents(offset: number, length: number): DirtyExtent[] {
    const end = Math.min(this.size, offset + length);
    const runs: DirtyExtent[] = [];
    if (offset < 0 || offset >= end) return runs;
    let bit = Math.floor(offset / this.granularity);
    const lastBit = Math.ceil(end / this.granularity);
    let start = offset;
    while (bit < lastBit) {
      const dirty = this.bitAt(bit);
      const next = Math.min(lastBit, this.nextChange(bit, dirty, lastBit));
      const runEnd = Math.min(end, next * this.granularity);
      runs.push({ offset: start, length: runEnd - start, dirty });
      start = runEnd;
      bit = next;
    }
    return runs;
  }

  private bitAt(bit: number): boolean {
    return ((this.bytes[bit >>> 3]! >>> (bit & 7)) & 1) === 1;
  }

  /** The first bit at or after `bit` that is not `dirty`, or `limit`; whole bytes of one value are skipped. */
  private nextChange(bit: number, dirty: boolean, limit: number): number {
    const same = dirty ? 0xff : 0x00;
    while (bit < limit) {
      if ((bit & 7) === 0 && this.bytes[bit >>> 3] === same) {
        bit += 8;
        continue;
      }
      if (this.bitAt(bit) !== dirty) return bit;
      bit++;
    }
    return limit;
  }

  private setBits(first: number, last: number): void {
    let bit = first;
    while (bit < last && (bit & 7) !== 0) this.bytes[bit >>> 3]! |= 1 << (bit++ & 7);
    const wholeEnd = last - (last % 8);
    if (bit < wholeEnd) {
      this.bytes.fill(0xff, bit >>> 3, wholeEnd >>> 3);
      bit = wholeEnd;
    }
    while (bit < last) this.bytes[bit >>> 3]! |= 1 << (bit++ & 7);
  }
}
