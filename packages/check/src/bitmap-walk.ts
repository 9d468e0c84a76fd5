import { DiskError, readPadded } from '@q/raw';
import { view } from '@q/format';
import { addReferences, type WalkContext } from './walk-context.js';

/** Bitmap table entry (spec: "Bitmap table"): bits 9-55 the data cluster, bit 0 "all ones" when there is none. */
const RESERVED_HI = 0xff00_0000;
const RESERVED_LO = 0x0000_01fe;
const OFFSET_HI = 0x00ff_ffff;
const OFFSET_LO = 0xffff_fe00;
const ALL_ONES_LO = 0x1;
/** Bitmap table entries read at a time, so a large table costs a bounded buffer. */
const PIECE_ENTRIES = 8192;

/**
 * Counts the clusters of persistent dirty bitmaps: the directory, every bitmap table and the data clusters
 * those tables name. A table entry QEMU cannot load (reserved bits, an unaligned cluster) stops the check, as it
 * does in QEMU ("Check failed: Invalid argument"), after counting one corruption.
 */
export async function walkBitmaps(context: WalkContext): Promise<void> {
  const bitmaps = context.layout.bitmaps;
  if (bitmaps === undefined || bitmaps.entries.length === 0) return;
  const { file, geometry } = context.layout;
  addReferences(context, bitmaps.offset, bitmaps.size);
  for (const bitmap of bitmaps.entries) {
    addReferences(context, bitmap.tableOffset, bitmap.tableSize * 8);
    // QEMU loads (and validates) the whole table before it counts any cluster in it: a bad entry anywhere means
    // none are counted. Two passes keep the buffer bounded however large the table claims to be.
    for (const pass of ['validate', 'count'] as const) {
      const piece = new Uint8Array(Math.min(bitmap.tableSize, PIECE_ENTRIES) * 8);
      for (let first = 0; first < bitmap.tableSize; first += PIECE_ENTRIES) {
        const count = Math.min(PIECE_ENTRIES, bitmap.tableSize - first);
        const bytes = piece.subarray(0, count * 8);
        await readPadded(file, bytes, bitmap.tableOffset + first * 8);
        const v = view(bytes);
        for (let i = 0; i < count; i++) {
          const hi = v.getUint32(i * 8);
          const lo = v.getUint32(i * 8 + 4);
          const offset = (hi & OFFSET_HI) * 0x1_0000_0000 + ((lo & OFFSET_LO) >>> 0);
          if (pass === 'count') {
            if (offset !== 0) addReferences(context, offset, geometry.clusterSize);
            continue;
          }
          const invalid =
            (hi & RESERVED_HI) !== 0 ||
            (lo & RESERVED_LO) !== 0 ||
            (offset !== 0 && ((lo & ALL_ONES_LO) !== 0 || offset % geometry.clusterSize !== 0 || offset > Number.MAX_SAFE_INTEGER));
          if (invalid) {
            context.counts.corruptions++;
            throw new DiskError('E_CORRUPT', 'Invalid argument', { file: file.name });
          }
        }
      }
    }
  }
}
