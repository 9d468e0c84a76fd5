import { encodeHeaderFields, INCOMPAT_CORRUPT } from '@q/format';
import type { CheckLog } from './check-result.js';
import type { ImageLayout } from './image-layout.js';
import type { UnalignedRefcountBlock } from './on-disk-refcounts.js';
import { altHex } from './printf.js';

/** Whether the image was already reported corrupt: QEMU says so once per opened image (both passes included). */
export interface CorruptionState {
  signaled: boolean;
}

/**
 * What QEMU does when a lookup meets an unaligned refcount block: a read-only check reports the image corrupt;
 * a repairing one (the image is open read-write) also sets the corrupt bit, so that nothing writes to the image
 * until a repair succeeds (which clears the bit again).
 */
export function unalignedBlockSignal(
  layout: ImageLayout,
  state: CorruptionState,
  repairing: boolean,
  log: CheckLog,
): (block: UnalignedRefcountBlock) => Promise<void> {
  return async (block) => {
    if (state.signaled) return;
    state.signaled = true;
    const what = `Refblock offset ${altHex(block.offset)} unaligned (reftable index: ${altHex(block.tableIndex)})`;
    if (!repairing) {
      log(`qcow2: Image is corrupt: ${what}; further non-fatal corruption events will be suppressed`);
      return;
    }
    log(`qcow2: Marking image as corrupt: ${what}; further corruption events will be suppressed`);
    const { header, file } = layout;
    if (header.version < 3 || (header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n) return;
    header.incompatibleFeatures |= INCOMPAT_CORRUPT;
    const patch = encodeHeaderFields(header, ['incompatibleFeatures']);
    await file.write(patch.bytes, patch.offset);
    await file.flush();
  };
}
