import type { TableCache } from '@q/cache';
import { decodeL2Entry, type Geometry, type L2Entry } from '@q/format';
import { DiskError, isDiskError, hex, type DiskErrorReason } from '@q/raw';
import type { L1Table } from './l1-table.js';
import type { MetadataRegions } from './metadata-regions.js';
import { appendExtent, type MapExtent } from './map-extent.js';

export interface ClusterMapperOptions {
  geometry: Geometry;
  /** The active (or a snapshot's) L1 table. */
  l1: L1Table;
  /** Cache of L2 tables keyed by their offset in the image file. */
  l2Cache: TableCache;
  /** Length of the image file: pointers past it are errors, not zeros. */
  imageFileSize: number;
  /** Metadata clusters (header, L1, refcount table, snapshot table...) that pointers must not land in. */
  metadata: MetadataRegions;
  /** Name of the image file, for errors. */
  name: string;
}

/**
 * Translates guest ranges into host extents through the L1 and L2 tables (spec: "Cluster mapping"). It only reads
 * metadata; the engine does the data I/O. Every pointer it follows is checked: aligned, inside the file, clear of
 * the header and other metadata.
 */
export class ClusterMapper {
  readonly geometry: Geometry;
  readonly l1: L1Table;
  private readonly l2Cache: TableCache;
  /** Length of the image file; the writer raises it as the file grows. */
  imageFileSize: number;
  private readonly metadata: MetadataRegions;
  private readonly name: string;

  constructor(options: ClusterMapperOptions) {
    this.geometry = options.geometry;
    this.l1 = options.l1;
    this.l2Cache = options.l2Cache;
    this.imageFileSize = options.imageFileSize;
    this.metadata = options.metadata;
    this.name = options.name;
  }

  /** Describes `[offset, offset + length)` as consecutive extents covering all of it. */
  async map(offset: number, length: number): Promise<MapExtent[]> {
    const extents: MapExtent[] = [];
    const { l2Coverage } = this.geometry;
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const l1Index = Math.floor(position / l2Coverage);
      const tableEnd = Math.min(end, (l1Index + 1) * l2Coverage);
      const l2Offset = this.l1.l2Offset(l1Index);
      if (l2Offset === 0) {
        appendExtent(extents, { kind: 'unallocated', guestOffset: position, length: tableEnd - position });
      } else {
        const table = this.l2Cache.peek(l2Offset) ?? (await this.loadL2(l2Offset, l1Index));
        this.mapWithinTable(extents, table, position, tableEnd);
      }
      position = tableEnd;
    }
    return extents;
  }

  /** The L2 table at `l2Offset` (named by L1 entry `l1Index`), checked before it is first loaded. */
  async loadL2(l2Offset: number, l1Index: number): Promise<Uint8Array> {
    this.checkPointer(l2Offset, this.geometry.clusterSize, { what: `L2 table (L1 entry ${l1Index})`, whole: true, expected: ACTIVE_L2_TABLE });
    return this.l2Cache.get(l2Offset);
  }

  private mapWithinTable(extents: MapExtent[], table: Uint8Array, start: number, end: number): void {
    const { clusterSize, l2Entries, subclusterSize } = this.geometry;
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let position = start;
    while (position < end) {
      const cluster = Math.floor(position / clusterSize);
      const clusterStart = cluster * clusterSize;
      const clusterEnd = Math.min(end, clusterStart + clusterSize);
      const entry = this.decodeEntry(view, cluster % l2Entries);
      if (entry.compressed) {
        appendExtent(extents, {
          kind: 'compressed',
          guestOffset: position,
          length: clusterEnd - position,
          clusterGuestOffset: clusterStart,
          hostOffset: entry.hostOffset,
          compressedBytes: entry.compressedBytes,
        });
        position = clusterEnd;
        continue;
      }
      // Walk runs of subclusters with the same state; a standard entry is one run (all mask bits alike).
      while (position < clusterEnd) {
        const sub = Math.floor((position - clusterStart) / subclusterSize);
        const state = subclusterState(entry, sub);
        let runEnd = clusterStart + (sub + 1) * subclusterSize;
        for (let next = sub + 1; runEnd < clusterEnd && subclusterState(entry, next) === state; next++) {
          runEnd += subclusterSize;
        }
        runEnd = Math.min(runEnd, clusterEnd);
        const length = runEnd - position;
        const hostOffset = entry.hostOffset + (position - clusterStart);
        if (state === ALLOCATED) {
          // QEMU writes whole (sub)clusters, so the bytes a guest range needs must all be in the file.
          if (!this.geometry.externalDataFile && hostOffset + length > this.imageFileSize) {
            throw new DiskError('E_PAST_EOF', `data cluster at ${hex(entry.hostOffset)} runs past the end of the file (${this.imageFileSize} bytes)`, {
              file: this.name,
              offset: entry.hostOffset,
            });
          }
          appendExtent(extents, { kind: 'data', guestOffset: position, length, hostOffset });
        } else if (state === ZERO) {
          appendExtent(extents, { kind: 'zero', guestOffset: position, length, hostOffset: entry.hostOffset === 0 ? undefined : hostOffset });
        } else {
          const unallocated: MapExtent = { kind: 'unallocated', guestOffset: position, length };
          if (entry.hostOffset !== 0) unallocated.hostOffset = hostOffset;
          appendExtent(extents, unallocated);
        }
        position = runEnd;
      }
      // A whole standard cluster mapped: the clusters after it that continue its extent join it in one step.
      if (position === clusterStart + clusterSize && position < end) position = this.extendRun(extents, view, cluster % l2Entries, entry, position, end);
    }
  }

  /**
   * Joins to the last extent the whole clusters from `position` on whose entries continue the one at `index`
   * (standard tables without an external data file): the same bits (unallocated, or zero without a host cluster)
   * or the same flags with the next host cluster. Each entry is compared as stored instead of decoded, which
   * makes a long run cost a comparison per cluster instead of an entry object and an extent. The pointer checks
   * decodeEntry makes per cluster are made once for the run; when one fails, the run is not taken, and the
   * cluster-by-cluster path finds the bad entry and reports it as ever. Returns where mapping goes on.
   */
  private extendRun(extents: MapExtent[], view: DataView, index: number, entry: L2Entry, position: number, end: number): number {
    const { clusterSize, l2Entries } = this.geometry;
    if (this.geometry.extendedL2 || this.geometry.externalDataFile || entry.compressed) return position;
    // The loop keeps to small integers: image offsets past 1 GiB, and 32-bit words with their top bits set, are heap
    // numbers in code V8 has not optimized yet, and the loop allocated ~55 bytes per entry (0.9 MB to map a 1 GiB
    // image; two scavenges of a `qcow map`). So the entries left before `end` are counted once, and each entry is
    // compared as four 16-bit words: the same words for a run without host clusters, the words of the entry before
    // plus one cluster (carried by hand) for a run of consecutive host clusters with the same flags.
    const limit = Math.min(l2Entries, index + 1 + Math.ceil((end - position) / clusterSize));
    const stepLow = clusterSize & 0xffff;
    const stepHigh = Math.floor(clusterSize / 0x1_0000);
    const consecutive = entry.hostOffset !== 0;
    let at = index * 8;
    let w0 = view.getUint16(at);
    let w1 = view.getUint16(at + 2);
    let w2 = view.getUint16(at + 4);
    let w3 = view.getUint16(at + 6);
    let count = 0;
    for (let next = index + 1; next < limit; next++) {
      if (consecutive) {
        w3 += stepLow;
        w2 += stepHigh + (w3 >> 16);
        w1 += w2 >> 16;
        w0 += w1 >> 16;
        w3 &= 0xffff;
        w2 &= 0xffff;
        w1 &= 0xffff;
      }
      at = next * 8;
      if (view.getUint16(at + 6) !== w3 || view.getUint16(at + 4) !== w2 || view.getUint16(at + 2) !== w1 || view.getUint16(at) !== w0) break;
      count++;
    }
    if (count === 0) return position;
    const runEnd = Math.min(end, position + count * clusterSize);
    if (entry.allocMask !== 0) {
      // decodeEntry's checks for every cluster of the run, and the past-the-end check of the data path.
      const host = entry.hostOffset + clusterSize;
      const bytes = runEnd - position;
      if (host + bytes > this.imageFileSize || this.metadata.overlap(host, bytes) !== undefined) return position;
    }
    const last = extents[extents.length - 1]!;
    last.length += runEnd - position;
    return runEnd;
  }

  /** Decodes and checks entry `index` of an L2 table: what the mapper and the writer both act on. */
  decodeEntry(view: DataView, index: number): L2Entry {
    let entry: L2Entry;
    try {
      entry = decodeL2Entry(view, index, this.geometry);
    } catch (error) {
      throw isDiskError(error) ? error.withFile(this.name) : error;
    }
    if (entry.compressed) {
      // The spec allows no compressed clusters with an external data file: broken metadata, which QEMU marks corrupt.
      if (this.geometry.externalDataFile) throw this.corrupt('compressed cluster in an image with an external data file', entry.hostOffset);
      // Compressed data where none can be: QEMU just fails to decompress it (EIO) and leaves the image unmarked.
      this.checkPointer(entry.hostOffset, 1, { what: 'compressed cluster', whole: false, reason: 'compressed-offset' });
    } else if (entry.allocMask !== 0 && !this.geometry.externalDataFile) {
      this.checkPointer(entry.hostOffset, 1, { what: 'data cluster', whole: false });
    }
    return entry;
  }

  /**
   * A pointer must start inside the file (QEMU would read zeros past the end; we refuse) and clear of the header
   * and the other fixed metadata. With `whole`, all `length` bytes must lie inside the file (tables); data may
   * end in a short last cluster.
   */
  private checkPointer(offset: number, length: number, pointer: Pointer): void {
    const { what, reason } = pointer;
    if (offset < this.geometry.clusterSize) throw this.corrupt(`${what} at ${hex(offset)} points into the image header`, offset, reason);
    const end = pointer.whole ? offset + length : offset + 1;
    if (end > this.imageFileSize) {
      throw new DiskError('E_PAST_EOF', `${what} at ${hex(offset)} lies past the end of the file (${this.imageFileSize} bytes)`, {
        file: this.name,
        offset,
      });
    }
    const overlapped = this.metadata.overlap(offset, length, pointer.expected);
    if (overlapped !== undefined) throw this.corrupt(`${what} at ${hex(offset)} overlaps the ${overlapped}`, offset, reason);
  }

  private corrupt(message: string, offset: number, reason?: DiskErrorReason): DiskError {
    return new DiskError('E_CORRUPT', message, { file: this.name, offset, reason });
  }
}

/** What a checked pointer is, for its errors. */
interface Pointer {
  what: string;
  /** All the bytes must lie inside the file (tables), not only the first (data). */
  whole: boolean;
  /** The metadata region the pointer may land on (an active L2 table on itself). */
  expected?: string;
  /** The reason a bad pointer is reported with (see DiskErrorReason). */
  reason?: DiskErrorReason;
}

/** How the engine names active L2 tables in MetadataRegions. */
export const ACTIVE_L2_TABLE = 'active L2 table';

const UNALLOCATED = 0;
const ALLOCATED = 1;
const ZERO = 2;

function subclusterState(entry: L2Entry, sub: number): number {
  const bit = 1 << sub;
  if ((entry.allocMask & bit) !== 0) return ALLOCATED;
  if ((entry.zeroMask & bit) !== 0) return ZERO;
  return UNALLOCATED;
}
