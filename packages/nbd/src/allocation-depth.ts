import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import type { AllocationExtent } from './allocation-status.js';

/**
 * The `qemu:allocation-depth` view of `[offset, offset + length)`, as qemu-nbd `-A` reports it: the flags of each
 * extent are the 1-based number of the chain layer that allocates it (1: the top image, 2: its backing file, ...;
 * a zero cluster counts as allocated, so does a raw file's hole), and 0 where no layer does.
 *
 * One rule is qemu's and easy to miss: a range a layer leaves unallocated that lies past the end of that layer's
 * (shorter) backing file is reported at the backing file's depth, not 0; qemu's block layer answers such ranges as
 * zeros on behalf of the backing file. Only what the bottom layer leaves unallocated is 0. An overlay made by
 * `--cow` is a layer like any other, so the image itself is then depth 2, as with qemu-nbd `-s -A`.
 */
export async function allocationDepthExtents(device: BlockDevice, offset: number, length: number): Promise<AllocationExtent[]> {
  const hasBacking = layersWithBacking(device);
  const extents: AllocationExtent[] = [];
  let covered = 0;
  for (const extent of await chainStatus(device, offset, length)) {
    // chainStatus's depth is 0-based and, for an unallocated extent, names the layer that left it unallocated.
    const depth = extent.present ? extent.depth + 1 : hasBacking[extent.depth] === true ? extent.depth + 2 : 0;
    const part = Math.min(extent.length, length - covered);
    if (part <= 0) break;
    covered += part;
    const last = extents[extents.length - 1];
    if (last !== undefined && last.flags === depth) last.length += part;
    else extents.push({ length: part, flags: depth });
  }
  return extents;
}

/** For each layer from the top, whether it has a backing device. */
function layersWithBacking(device: BlockDevice): boolean[] {
  const result: boolean[] = [];
  for (let layer: BlockDevice | undefined = device; layer !== undefined; layer = layer.backing) result.push(layer.backing !== undefined);
  return result;
}
