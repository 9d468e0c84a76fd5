import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import { NBD_STATE_HOLE, NBD_STATE_ZERO } from './protocol.js';

/** One base:allocation descriptor: `length` bytes with the same status flags. */
export interface AllocationExtent {
  length: number;
  flags: number;
}

/**
 * The base:allocation view of `[offset, offset + length)` (proto.md "Metadata contexts"), looking down the whole
 * backing chain as a guest would see it:
 * - stored data (in any layer): 0, allocated and not known to be zero; ZERO where its host bytes are a hole;
 * - a zero cluster with no storage behind it: HOLE|ZERO; one that keeps its host cluster: ZERO only, since
 *   writing there needs no new space; a hole of a raw file: HOLE|ZERO (qemu-nbd's flags for each);
 * - left unallocated by every layer: HOLE|ZERO.
 * Adjacent extents with equal flags are merged, because clients (and the spec's SHOULD) want status changes only.
 */
export async function allocationExtents(device: BlockDevice, offset: number, length: number): Promise<AllocationExtent[]> {
  const extents: AllocationExtent[] = [];
  let covered = 0;
  for (const extent of await chainStatus(device, offset, length)) {
    const flags = extent.data
      ? extent.zero
        ? NBD_STATE_ZERO
        : 0
      : extent.zero && extent.present && extent.hostOffset !== undefined && extent.hole !== true
        ? NBD_STATE_ZERO
        : NBD_STATE_HOLE | NBD_STATE_ZERO;
    covered += extent.length;
    const last = extents[extents.length - 1];
    if (last !== undefined && last.flags === flags) last.length += extent.length;
    else extents.push({ length: extent.length, flags });
  }
  // chainStatus covers the range; this guards the spec's rule that descriptors never describe past the request.
  if (covered > length) trimTo(extents, length);
  return extents;
}

function trimTo(extents: AllocationExtent[], length: number): void {
  let total = 0;
  for (let i = 0; i < extents.length; i++) {
    const extent = extents[i]!;
    if (total + extent.length >= length) {
      extent.length = length - total;
      extents.length = extent.length === 0 ? i : i + 1;
      return;
    }
    total += extent.length;
  }
}
