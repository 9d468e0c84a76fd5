/**
 * One run of guest bytes with a single mapping, as the mapper returns them (the metadata layer says where bytes
 * are; the engine does the I/O). Runs of `data` are merged while their host offsets stay contiguous, so one
 * extent is one read.
 */
export type MapExtent = DataExtent | ZeroExtent | CompressedExtent | UnallocatedExtent;

export interface DataExtent {
  kind: 'data';
  guestOffset: number;
  length: number;
  /** Host byte offset of `guestOffset` (in the image, or in the external data file). */
  hostOffset: number;
}

export interface ZeroExtent {
  kind: 'zero';
  guestOffset: number;
  length: number;
  /** Host offset of a preallocated zero cluster (zero flag with an offset), else undefined. */
  hostOffset: number | undefined;
}

export interface CompressedExtent {
  kind: 'compressed';
  guestOffset: number;
  length: number;
  /** Guest offset of the start of the compressed cluster (the unit of decompression). */
  clusterGuestOffset: number;
  /** Host byte offset of the compressed data (not aligned). */
  hostOffset: number;
  /** Bytes of compressed data to read (to the end of the descriptor's last sector). */
  compressedBytes: number;
}

export interface UnallocatedExtent {
  kind: 'unallocated';
  guestOffset: number;
  length: number;
  /** Host offset when the cluster is allocated but these subclusters are not (extended L2), else undefined. */
  hostOffset?: number;
}

/** Appends `next` to `extents`, growing the last extent instead when the two form one run. */
export function appendExtent(extents: MapExtent[], next: MapExtent): void {
  const last = extents[extents.length - 1];
  if (last !== undefined && last.kind === next.kind && last.guestOffset + last.length === next.guestOffset) {
    if ((last.kind === 'zero' && next.kind === 'zero') || (last.kind === 'unallocated' && next.kind === 'unallocated')) {
      const bothPlain = last.hostOffset === undefined && next.hostOffset === undefined;
      const contiguous = last.hostOffset !== undefined && last.hostOffset + last.length === next.hostOffset;
      if (bothPlain || contiguous) {
        last.length += next.length;
        return;
      }
    }
    if (last.kind === 'data' && next.kind === 'data' && last.hostOffset + last.length === next.hostOffset) {
      last.length += next.length;
      return;
    }
  }
  extents.push(next);
}
