import { BITMAP_FLAG_AUTO, BITMAP_FLAG_IN_USE } from '@q/format';
import { DiskError, type BlockFile } from '@q/raw';
import { readBitmap, type DirtyBitmap } from '@q/bitmaps';
import type { ImageMetadata } from './image-metadata.js';
import { attribute } from './qcow2-open.js';

/** qemu-img info's names for a bitmap's flags. */
export type BitmapFlag = 'in-use' | 'auto';

/** A persistent bitmap as `Qcow2Image.bitmaps()` lists it. */
export interface BitmapInfo {
  name: string;
  /** Bytes of the disk per bit. */
  granularity: number;
  flags: BitmapFlag[];
}

/**
 * How an open image shows its persistent bitmaps to readers: the list qemu-img info prints, and each bitmap's
 * bits, live for one the image's writer maintains (`live`), else read from the image once and kept (a stored
 * bitmap the writer does not maintain never changes until a bitmap command, which calls `forget`).
 */
export class BitmapViews {
  private readonly stored = new Map<string, Promise<DirtyBitmap>>();

  constructor(
    private readonly file: BlockFile,
    private readonly metadata: ImageMetadata,
    private readonly imageName: string,
    private readonly live: (name: string) => DirtyBitmap | undefined,
  ) {}

  list(): BitmapInfo[] {
    return (this.metadata.bitmaps ?? []).map((entry) => {
      const flags: BitmapFlag[] = [];
      // A bitmap this writer maintains is in_use on disk while open, but its bits in memory are exact.
      if ((entry.flags & BITMAP_FLAG_IN_USE) !== 0 && this.live(entry.name) === undefined) flags.push('in-use');
      if ((entry.flags & BITMAP_FLAG_AUTO) !== 0) flags.push('auto');
      return { name: entry.name, granularity: 2 ** entry.granularityBits, flags };
    });
  }

  /** A bitmap's bits (a copy to read, not change, for a stored one). Unknown: E_NO_SUCH; in_use: E_INVALID. */
  async bits(name: string): Promise<DirtyBitmap> {
    const live = this.live(name);
    if (live !== undefined) return live;
    const entry = (this.metadata.bitmaps ?? []).find((bitmap) => bitmap.name === name);
    if (entry === undefined) throw new DiskError('E_NO_SUCH', `Dirty bitmap '${name}' not found`, { file: this.imageName });
    if ((entry.flags & BITMAP_FLAG_IN_USE) !== 0) {
      throw new DiskError('E_INVALID', `Bitmap '${name}' is inconsistent and cannot be used`, { file: this.imageName });
    }
    let loading = this.stored.get(name);
    if (loading === undefined) {
      loading = readBitmap(this.file, entry, this.metadata.header.size, this.metadata.geometry.clusterSize)
        .then((stored) => stored.bitmap)
        .catch((error: unknown) => {
          this.stored.delete(name);
          throw attribute(error, this.imageName);
        });
      this.stored.set(name, loading);
    }
    return loading;
  }

  /** Drops the stored bitmaps read so far (a bitmap command changes them). */
  forget(): void {
    this.stored.clear();
  }
}
