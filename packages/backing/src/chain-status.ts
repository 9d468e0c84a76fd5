import type { BlockDevice } from '@q/raw';

/**
 * Where the bytes of a range come from, looking down the whole backing chain (the model of `qemu-img map`):
 * `depth` is the layer that decides (0 = the top image), `present` whether that layer allocates the range,
 * `zero` whether it reads as zeros, `data` whether it is stored data, and `hostOffset`/`hostFile` where, when the
 * bytes lie plainly in a file.
 */
export interface ChainExtent {
  offset: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  compressed: boolean;
  hostOffset?: number;
  hostFile?: string;
  /** The bytes at `hostOffset` are a hole in `hostFile` (BlockStatus.hole); set only when true. */
  hole?: true;
}

/**
 * Walks `[offset, offset + length)` of `device` down its backing chain. A range a layer leaves unallocated goes to
 * the layer below while that layer is long enough; past the end of the backing device, or at the bottom, it reads
 * as zeros decided by the layer that left it unallocated (present: false), as QEMU reports it.
 */
export async function chainStatus(device: BlockDevice, offset: number, length: number): Promise<ChainExtent[]> {
  const result: ChainExtent[] = [];
  await walk(device, offset, Math.min(offset + length, device.size), 0, result);
  return result;
}

async function walk(device: BlockDevice, start: number, end: number, depth: number, out: ChainExtent[]): Promise<void> {
  if (end <= start) return;
  for (const status of await device.blockStatus(start, end - start)) {
    const statusEnd = status.offset + status.length;
    if (status.kind !== 'unallocated') {
      push(out, {
        offset: status.offset,
        length: status.length,
        depth,
        present: true,
        // Mapped data in a hole of the host file reads as zeros: qemu-img map reports it zero and data.
        zero: status.kind === 'zero' || status.hole === true,
        data: status.kind === 'data',
        compressed: status.compressed === true,
        ...(status.hostOffset === undefined ? {} : { hostOffset: status.hostOffset, hostFile: status.hostFile }),
        ...(status.hole === true ? { hole: true as const } : {}),
      });
      continue;
    }
    const backing = device.backing;
    const throughEnd = backing === undefined ? status.offset : Math.min(statusEnd, Math.max(status.offset, backing.size));
    if (backing !== undefined && throughEnd > status.offset) await walk(backing, status.offset, throughEnd, depth + 1, out);
    if (throughEnd < statusEnd) {
      push(out, {
        offset: throughEnd,
        length: statusEnd - throughEnd,
        depth,
        present: false,
        zero: true,
        data: false,
        compressed: false,
        // An unallocated subcluster of an allocated cluster still has a host offset; QEMU prints it.
        ...(status.hostOffset === undefined || backing !== undefined
          ? {}
          : { hostOffset: status.hostOffset + (throughEnd - status.offset), hostFile: status.hostFile }),
      });
    }
  }
}

/** Appends, merging with the previous extent when the two form one run. */
function push(out: ChainExtent[], next: ChainExtent): void {
  const last = out[out.length - 1];
  if (last !== undefined && continuesRun(last, next)) last.length += next.length;
  else out.push(next);
}

/**
 * Whether `next` continues `previous` as one run: adjacent, every property equal, host offsets (if any)
 * contiguous. This is qemu-img map's merge rule.
 */
export function continuesRun(previous: ChainExtent, next: ChainExtent): boolean {
  return (
    previous.offset + previous.length === next.offset &&
    previous.depth === next.depth &&
    previous.present === next.present &&
    previous.zero === next.zero &&
    previous.data === next.data &&
    previous.compressed === next.compressed &&
    previous.hostFile === next.hostFile &&
    previous.hole === next.hole &&
    (previous.hostOffset === undefined ? next.hostOffset === undefined : previous.hostOffset + previous.length === next.hostOffset)
  );
}
