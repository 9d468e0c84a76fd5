import type { BlockDevice, WriteZeroesOptions } from '@q/raw';
import { ForwardingDevice } from './forwarding-device.js';

/** What a change marks: an enabled dirty bitmap (`qcow serve -B`'s MemoryDirtyBitmap). */
export interface DirtyMarker {
  markDirty(offset: number, length: number): void;
}

/**
 * Marks every range a write, zero write or discard reaches in each bitmap, before the change runs: a client
 * reading the bitmap while the change is in flight sees the range dirty, never clean with new data under it.
 * A failed change stays marked, which only makes an incremental backup copy a little more. It sits below
 * `--discard=ignore`, so a discard that is ignored marks nothing (QEMU marks only discards it carries out).
 */
export class DirtyMarkingDevice extends ForwardingDevice {
  constructor(
    inner: BlockDevice,
    private readonly markers: readonly DirtyMarker[],
  ) {
    super(inner);
  }

  override async write(src: Uint8Array, offset: number): Promise<void> {
    this.mark(offset, src.length);
    await this.inner.write(src, offset);
  }

  override async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.mark(offset, length);
    await this.inner.writeZeroes(offset, length, options);
  }

  override async discard(offset: number, length: number): Promise<void> {
    this.mark(offset, length);
    await this.inner.discard(offset, length);
  }

  private mark(offset: number, length: number): void {
    for (const marker of this.markers) marker.markDirty(offset, length);
  }
}
