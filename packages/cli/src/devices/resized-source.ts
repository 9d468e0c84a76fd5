import type { BlockDevice, BlockStatus } from '@q/raw';
import { ForwardingDevice } from './forwarding-device.js';

/**
 * A read-only view of a device at another size: past the device's end it reads zeros, and a shorter view hides
 * what lies beyond. `qemu-img convert -l snapshot.name=S` converts a snapshot at the image's current virtual size
 * (a snapshot taken before a resize is cut or zero-extended), which this reproduces.
 */
export class ResizedSource extends ForwardingDevice {
  constructor(
    inner: BlockDevice,
    private readonly viewSize: number,
  ) {
    super(inner);
  }

  override get size(): number {
    return this.viewSize;
  }

  override async read(dst: Uint8Array, offset: number): Promise<void> {
    const inside = Math.max(0, Math.min(dst.length, this.inner.size - offset));
    if (inside > 0) await this.inner.read(dst.subarray(0, inside), offset);
    dst.fill(0, inside);
  }

  override async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const end = Math.min(this.viewSize, offset + length);
    const innerEnd = Math.min(end, this.inner.size);
    const status = innerEnd > offset ? await this.inner.blockStatus(offset, innerEnd - offset) : [];
    const from = Math.max(offset, innerEnd);
    // The added tail has no layer below it: zeros, decided here.
    if (end > from) status.push({ offset: from, length: end - from, kind: 'zero' });
    return status;
  }
}
