import type { BlockDevice, WriteZeroesOptions } from '@q/raw';
import { ForwardingDevice } from './forwarding-device.js';

/** QEMU's cache modes (`qemu-nbd --cache`, `-drive cache=`); writeback is qemu-nbd's default. */
export type CacheMode = 'none' | 'writeback' | 'writethrough' | 'directsync' | 'unsafe';

export const CACHE_MODES: readonly CacheMode[] = ['none', 'writeback', 'writethrough', 'directsync', 'unsafe'];

export function isCacheMode(text: string): text is CacheMode {
  return (CACHE_MODES as readonly string[]).includes(text);
}

/**
 * The durability side of a cache mode, as QEMU defines it:
 * - writeback and none: a write is acknowledged once the device has it; a flush makes it durable;
 * - writethrough and directsync: every write (and write of zeroes) is flushed before it is acknowledged, so a
 *   client that never flushes loses nothing in a host crash (QEMU turns the write cache off: each write gets FUA);
 * - unsafe: flushes (and FUA) do nothing: fastest, and a host crash may lose any write.
 * none and directsync also bypass the host page cache in QEMU (O_DIRECT). Node cannot give O_DIRECT the aligned
 * buffers it needs, so here they keep only their durability (none = writeback, directsync = writethrough); the
 * page cache is still used. Discards are not flushed in writethrough, as in QEMU.
 */
export function withCacheMode(device: BlockDevice, mode: CacheMode): BlockDevice {
  switch (mode) {
    case 'writeback':
    case 'none':
      return device;
    case 'writethrough':
    case 'directsync':
      return new WriteThroughDevice(device);
    case 'unsafe':
      return new NoFlushDevice(device);
  }
}

/** Each write or write of zeroes is durable (flushed) before it resolves. */
export class WriteThroughDevice extends ForwardingDevice {
  override async write(src: Uint8Array, offset: number): Promise<void> {
    await this.inner.write(src, offset);
    await this.inner.flush();
  }

  override async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    await this.inner.writeZeroes(offset, length, options);
    await this.inner.flush();
  }
}

/**
 * Flushes succeed without doing anything (QEMU's cache=unsafe). Closing the device still writes out what its
 * engine holds, so a clean shutdown leaves a consistent image; only a host crash loses writes.
 */
export class NoFlushDevice extends ForwardingDevice {
  override async flush(): Promise<void> {}
}
