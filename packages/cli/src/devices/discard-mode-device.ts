import type { BlockDevice } from '@q/raw';
import { isAllZero } from '../zero-detect.js';
import { ForwardingDevice } from './forwarding-device.js';

/** QEMU's discard option: what a trim does (`qemu-nbd --discard`; ignore is qemu-nbd's default). */
export type DiscardMode = 'ignore' | 'unmap';

/** QEMU's detect-zeroes option: whether a write whose payload is all zeros becomes a write of zeroes. */
export type DetectZeroesMode = 'off' | 'on' | 'unmap';

export interface DiscardModes {
  discard: DiscardMode;
  detectZeroes: DetectZeroesMode;
}

/**
 * Applies QEMU's discard and detect-zeroes semantics to a device, as qemu-nbd does to what clients send:
 * - discard=ignore: a trim succeeds and changes nothing (qemu-nbd still advertises trim); unmap passes it on.
 *   Writes of zeroes are not affected: a client that lets them unmap still gets that (qemu-nbd does the same).
 * - detect-zeroes=on: a write whose whole payload is zeros becomes a write of zeroes that keeps the allocation
 *   (qcow2: a zero flag on the cluster, its host cluster kept; an unallocated cluster becomes a zero cluster);
 *   =unmap: one that may release the space too (only allowed with discard=unmap, checked by the caller).
 */
export function withDiscardModes(device: BlockDevice, modes: DiscardModes): BlockDevice {
  if (modes.discard === 'unmap' && modes.detectZeroes === 'off') return device;
  return new DiscardModeDevice(device, modes);
}

export class DiscardModeDevice extends ForwardingDevice {
  private readonly modes: DiscardModes;

  constructor(inner: BlockDevice, modes: DiscardModes) {
    super(inner);
    this.modes = modes;
  }

  override write(src: Uint8Array, offset: number): Promise<void> {
    // An empty write has nothing to detect; the device's own checks (range, read-only) still apply to it.
    if (this.modes.detectZeroes === 'off' || src.length === 0 || !isAllZero(src)) return this.inner.write(src, offset);
    return this.inner.writeZeroes(offset, src.length, { unmap: this.modes.detectZeroes === 'unmap' });
  }

  override async discard(offset: number, length: number): Promise<void> {
    if (this.modes.discard === 'unmap') await this.inner.discard(offset, length);
  }
}
