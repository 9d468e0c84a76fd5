import type { ClusterMapper, CompressedExtent, MapExtent } from '@q/mapper';
import { DiskError, readPadded, type BlockDevice, type BlockFile } from '@q/raw';
import type { CompressedPart, CompressedReader } from './compressed-reader.js';

/** What reading guest bytes needs: the mapping, the file data clusters live in, the decompressor, the layer below. */
export interface GuestReaderParts {
  mapper: ClusterMapper;
  dataFile: BlockFile;
  compressed: CompressedReader | undefined;
  /** The image's compression type, named when compressed clusters meet no decompressor. */
  compressionType: string;
  backing: BlockDevice | undefined;
}

/**
 * Reads guest bytes of one qcow2 layer: each extent of the mapping from its data cluster (a short last cluster of
 * the file padded with zeros), as zeros, from the backing device (zeros past its end, or without one), or
 * decompressed; all of a request's extents at once.
 */
export class GuestReader {
  constructor(private readonly p: GuestReaderParts) {}

  /** Fills `dst` with the guest bytes at `offset` (inside the disk: the caller checks the range). */
  async read(dst: Uint8Array, offset: number): Promise<void> {
    const extents = await this.p.mapper.map(offset, dst.length);
    const pending: Promise<void>[] = [];
    const compressed: CompressedPart[] = [];
    for (const extent of extents) {
      const part = dst.subarray(extent.guestOffset - offset, extent.guestOffset - offset + extent.length);
      if (extent.kind === 'compressed') compressed.push({ dst: part, extent });
      else this.readExtent(part, extent, pending);
    }
    if (compressed.length > 0) pending.push(this.compressedReader().read(compressed));
    await Promise.all(pending);
  }

  private readExtent(part: Uint8Array, extent: Exclude<MapExtent, CompressedExtent>, pending: Promise<void>[]): void {
    switch (extent.kind) {
      case 'data':
        // A data cluster may be the file's last, short cluster: what is missing reads as zeros.
        pending.push(readPadded(this.p.dataFile, part, extent.hostOffset));
        return;
      case 'zero':
        part.fill(0);
        return;
      case 'unallocated':
        pending.push(this.readBelow(part, extent.guestOffset));
        return;
    }
  }

  private compressedReader(): CompressedReader {
    if (this.p.compressed === undefined) {
      const type = this.p.compressionType;
      throw new DiskError('E_UNSUPPORTED', `the image has ${type} compressed clusters but no ${type} decompressor was provided`);
    }
    return this.p.compressed;
  }

  /** Bytes this layer leaves unallocated: from the backing device, zeros past its end or when there is none. */
  private async readBelow(part: Uint8Array, guestOffset: number): Promise<void> {
    const backing = this.p.backing;
    const fromBacking = backing === undefined ? 0 : Math.max(0, Math.min(part.length, backing.size - guestOffset));
    if (fromBacking > 0) await backing!.read(part.subarray(0, fromBacking), guestOffset);
    if (fromBacking < part.length) part.fill(0, fromBacking);
  }
}
