import type { AllocationExtent } from './allocation-status.js';
import { NBD_STATE_DIRTY } from './protocol.js';

/** One run of a dirty bitmap: `length` bytes at `offset`, all dirty or all clean. */
export interface DirtyRun {
  offset: number;
  length: number;
  dirty: boolean;
}

/**
 * A persistent dirty bitmap as the server needs it (`qemu-nbd -B NAME`): its name and its runs over a range. The
 * image engine owns bitmaps; callers adapt it to this, so @q/nbd serves bitmaps without depending on an engine.
 */
export interface DirtyBitmapSource {
  /** The bitmap's name; the context is `qemu:dirty-bitmap:` + name. */
  readonly name: string;
  /** Consecutive runs covering `[offset, offset + length)` (clipped to the device), in order. */
  dirtyExtents(offset: number, length: number): Promise<DirtyRun[]>;
}

/**
 * The `qemu:dirty-bitmap:NAME` view of `[offset, offset + length)`: NBD_STATE_DIRTY (1) where the bitmap is dirty,
 * 0 where clean, as qemu-nbd encodes it. Adjacent runs with the same state are merged. A source whose runs leave a
 * gap, overlap or run backwards is broken: that is an error for this request, never a wrong answer.
 */
export async function dirtyBitmapExtents(source: DirtyBitmapSource, offset: number, length: number): Promise<AllocationExtent[]> {
  const extents: AllocationExtent[] = [];
  const end = offset + length;
  let at = offset;
  for (const run of await source.dirtyExtents(offset, length)) {
    if (at >= end) break;
    if (run.offset > at || run.offset + run.length <= at) {
      throw new Error(`dirty bitmap '${source.name}' has no run at offset ${at} (got ${run.offset}+${run.length})`);
    }
    // A run may start before the range (a source rounding to its granularity): only the part inside counts.
    const partEnd = Math.min(run.offset + run.length, end);
    const flags = run.dirty ? NBD_STATE_DIRTY : 0;
    const last = extents[extents.length - 1];
    if (last !== undefined && last.flags === flags) last.length += partEnd - at;
    else extents.push({ length: partEnd - at, flags });
    at = partEnd;
  }
  if (extents.length === 0) throw new Error(`dirty bitmap '${source.name}' returned nothing at offset ${offset}`);
  return extents;
}
