import type { DirtyBitmapSource, DirtyRun } from '@q/nbd';
import type { StoredBitmap } from './stored-bitmap.js';

/**
 * A dirty bitmap held in memory for `qcow serve -B`, as QEMU holds a loaded persistent bitmap: NBD clients read
 * its runs, and while it is enabled every write, zero write and discard of this session sets the bits it touches
 * (`markDirty`), so a backup tool sees this session's changes too. Nothing is written back to the image.
 */
export class MemoryDirtyBitmap implements DirtyBitmapSource {
  readonly name: string;
  readonly enabled: boolean;
  private readonly granularity: number;
  private readonly bits: Uint8Array;

  constructor(
    stored: StoredBitmap,
    private readonly size: number,
  ) {
    this.name = stored.name;
    this.enabled = stored.enabled;
    this.granularity = stored.granularity;
    this.bits = stored.bits;
  }

  /** Sets the bits of every granule `[offset, offset + length)` touches (a partial granule counts as dirty). */
  markDirty(offset: number, length: number): void {
    if (!this.enabled || length <= 0) return;
    const last = Math.min(Math.ceil((offset + length) / this.granularity), this.bits.length * 8);
    for (let bit = Math.floor(offset / this.granularity); bit < last; bit++) this.bits[bit >>> 3]! |= 1 << (bit & 7);
  }

  async dirtyExtents(offset: number, length: number): Promise<DirtyRun[]> {
    const end = Math.min(offset + length, this.size);
    const runs: DirtyRun[] = [];
    let bit = Math.floor(offset / this.granularity);
    const lastBit = Math.ceil(end / this.granularity);
    while (bit < lastBit) {
      const dirty = this.isSet(bit);
      const next = this.runEnd(bit, lastBit, dirty);
      const start = Math.max(bit * this.granularity, offset);
      runs.push({ offset: start, length: Math.min(next * this.granularity, end) - start, dirty });
      bit = next;
    }
    return runs;
  }

  private isSet(bit: number): boolean {
    return ((this.bits[bit >>> 3]! >>> (bit & 7)) & 1) === 1;
  }

  /** The first bit at or after `bit` (below `limit`) whose state differs from `dirty`; whole bytes at a time. */
  private runEnd(bit: number, limit: number, dirty: boolean): number {
    const same = dirty ? 0xff : 0;
    while (bit < limit) {
      if ((bit & 7) === 0 && bit + 8 <= limit && this.bits[bit >>> 3] === same) bit += 8;
      else if (this.isSet(bit) === dirty) bit++;
      else break;
    }
    return bit;
  }
}
