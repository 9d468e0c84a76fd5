import { readPadded } from '@q/raw';
import { ALL_SUBCLUSTERS, encodeL2Entry, readL2EntryWords, L1_RESERVED_HI_MASK, L1_RESERVED_LO_MASK, L2_ZERO_LO, view, withL2Copied } from '@q/format';
import { hex, u64 } from './printf.js';
import { offsetPlus, offsetRemainder, sameOffset, type HostOffset } from './host-offset.js';
import { compressedExtent, hasReservedBits, isCopied, l1EntryOffsetOf, l2Kind, standardOffset } from './l2-kind.js';
import { addReferences, type WalkContext } from './walk-context.js';

export interface TableWalkOptions {
  /** The active L1 table: its clusters feed the allocation statistics and may have their entries repaired. */
  active: boolean;
}

/**
 * Counts the references of one L1 table (the active one or a snapshot's): the table itself, each L2 table it
 * names, and what each L2 table maps. Problems are logged and counted in QEMU's words and order.
 */
export async function walkL1(context: WalkContext, l1Offset: HostOffset, l1Size: number, options: TableWalkOptions): Promise<void> {
  addReferences(context, l1Offset, l1Size * 8);
  // A table beyond 2^53 lies past the end of the file: it reads as zeros, naming no L2 table.
  if (l1Size === 0 || typeof l1Offset === 'bigint') return;
  const table = new Uint8Array(l1Size * 8);
  // Past the end of the file QEMU reads zeros; the references above already flag such a table.
  await readPadded(context.layout.file, table, l1Offset);
  const v = view(table);
  const clusterSize = context.layout.geometry.clusterSize;
  for (let i = 0; i < l1Size; i++) {
    const hi = v.getUint32(i * 8);
    const lo = v.getUint32(i * 8 + 4);
    if (hi === 0 && lo === 0) continue;
    if ((hi & L1_RESERVED_HI_MASK) !== 0 || (lo & L1_RESERVED_LO_MASK) !== 0) {
      context.log(`ERROR found L1 entry with reserved bits set: ${hex(u64(hi, lo))}`);
      context.counts.corruptions++;
    }
    const l2Offset = l1EntryOffsetOf(hi, lo);
    addReferences(context, l2Offset, clusterSize);
    if (offsetRemainder(l2Offset, clusterSize) !== 0) {
      context.log(`ERROR l2_offset=${hex(l2Offset)}: Table is not cluster aligned; L1 entry corrupted`);
      context.counts.corruptions++;
    }
    await walkL2(context, l2Offset, options);
  }
}

async function walkL2(context: WalkContext, l2Offset: HostOffset, options: TableWalkOptions): Promise<void> {
  // A table beyond 2^53 lies past the end of the file: it reads as zeros, all unallocated entries.
  if (typeof l2Offset === 'bigint') return;
  const { geometry, file } = context.layout;
  const { counts } = context;
  const clusterSize = geometry.clusterSize;
  const flags = { extendedL2: geometry.extendedL2, externalDataFile: geometry.externalDataFile };
  const table = new Uint8Array(clusterSize);
  await readPadded(file, table, l2Offset);
  const v = view(table);
  // Fragmentation is measured within one L2 table: each table starts a fresh run.
  let nextContiguous: HostOffset = 0;
  for (let i = 0; i < geometry.l2Entries; i++) {
    const words = readL2EntryWords(v, i, geometry.extendedL2);
    let hi = words.hi;
    const { lo, zeroMask: zeroBits, allocMask: allocBits } = words;
    const kind = l2Kind(hi, lo, flags);
    if (kind !== 'compressed' && hasReservedBits(hi, lo)) {
      context.log(`ERROR found l2 entry with reserved bits set: ${hex(u64(hi, lo))}`);
      counts.corruptions++;
    }
    switch (kind) {
      case 'compressed': {
        const { offset: hostOffset, bytes: compressedBytes } = compressedExtent(hi, lo, geometry.clusterBits);
        if (isCopied(hi)) {
          context.log(`ERROR: coffset=0x${hex(hostOffset)}: copied flag must never be set for compressed clusters`);
          hi = withL2Copied(hi, false);
          counts.corruptions++;
        }
        if (geometry.externalDataFile) {
          context.log(`ERROR compressed cluster ${i} with data file, entry=0x${hex(u64(hi, lo))}`);
          counts.corruptions++;
          break;
        }
        if (zeroBits !== 0 || allocBits !== 0) {
          context.log(`ERROR compressed cluster ${i} with non-zero subcluster allocation bitmap, entry=0x${hex(u64(hi, lo))}`);
          counts.corruptions++;
          break;
        }
        addReferences(context, hostOffset, compressedBytes);
        if (options.active) {
          counts.allocatedClusters++;
          counts.compressedClusters++;
          // Compressed clusters share sectors with their neighbours, so QEMU counts every one as fragmented.
          counts.fragmentedClusters++;
        }
        break;
      }
      case 'zero-alloc':
      case 'normal': {
        const offset = standardOffset(hi, lo);
        if ((zeroBits & allocBits) !== 0) {
          counts.corruptions++;
          context.log(`ERROR offset=${hex(offset)}: Allocated cluster has corrupted subcluster allocation bitmap`);
        }
        if (offsetRemainder(offset, clusterSize) !== 0) {
          counts.corruptions++;
          const containsData = geometry.extendedL2 ? allocBits !== 0 : (lo & L2_ZERO_LO) === 0;
          if (!containsData) {
            const repair = context.repair.errors;
            context.log(`${repair ? 'Repairing' : 'ERROR'} offset=${hex(offset)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`);
            if (repair) {
              // The cluster reads as zeros anyway: turning the entry into a plain zero entry loses nothing.
              await rewriteAsZero(context, l2Offset, i, table);
              counts.corruptions--;
              counts.corruptionsFixed++;
              continue;
            }
          } else {
            context.log(`ERROR offset=${hex(offset)}: Data cluster is not properly aligned; L2 entry corrupted.`);
          }
          // Unrepaired, the entry still counts (an unaligned cluster touches two host clusters), as in QEMU.
        }
        if (options.active) {
          counts.allocatedClusters++;
          if (nextContiguous !== 0 && !sameOffset(offset, nextContiguous)) counts.fragmentedClusters++;
          nextContiguous = offsetPlus(offset, clusterSize);
        }
        // Clusters of an external data file are not counted in the image's refcounts.
        if (!geometry.externalDataFile) addReferences(context, offset, clusterSize);
        break;
      }
      case 'zero-plain':
        break;
      case 'unallocated':
        if (allocBits !== 0) {
          counts.corruptions++;
          context.log('ERROR: Unallocated cluster has non-zero subcluster allocation map');
        }
        break;
    }
  }
}

/**
 * Writes entry `index` of the L2 table at `l2Offset` as a zero entry without a cluster, synced: the zero flag in a
 * standard table; in an extended one no cluster and no allocated subcluster, the zero bits kept as they were.
 */
async function rewriteAsZero(context: WalkContext, l2Offset: number, index: number, table: Uint8Array): Promise<void> {
  const { geometry, file } = context.layout;
  const at = index * geometry.l2EntryBytes;
  const v = view(table);
  const zeroMask = geometry.extendedL2 ? readL2EntryWords(v, index, true).zeroMask : ALL_SUBCLUSTERS;
  encodeL2Entry(v, index, { compressed: false, compressedBytes: 0, hostOffset: 0, copied: false, allocMask: 0, zeroMask }, geometry);
  await file.write(table.slice(at, at + geometry.l2EntryBytes), l2Offset + at);
  await file.flush();
}
