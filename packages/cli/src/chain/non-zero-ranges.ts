import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';

/** Bytes of a chain looked up at once. */
const WINDOW_BYTES = 64 << 20;

/**
 * Where a backing chain holds bytes that do not read as zeros (its block status, looked down the chain), looked up
 * a window at a time and answered per chunk. Rebase asked the chain of each side per 1 MiB chunk: two walks down
 * two chains per chunk, whose status objects were a fifth of the allocation of a rebase of a 1 GiB chain. A chunk
 * that straddles windows gets both. Answers never depend on what is cached: a window dropped too early is looked
 * up again. The chain must not change meanwhile (rebase reads backing files only).
 */
export class NonZeroRanges {
  /** Per window index: its non-zero ranges as [start, end) pairs, in order, adjacent ones joined. */
  private readonly windows = new Map<number, Promise<number[]>>();

  /** `device`: the chain's top, which the ranges are of and which reads them. */
  constructor(readonly device: BlockDevice) {}

  /** The non-zero ranges within `[start, end)`, clipped to it, in order. `end` must not pass the device's size. */
  async within(start: number, end: number): Promise<Array<[number, number]>> {
    const out: Array<[number, number]> = [];
    for (let index = Math.floor(start / WINDOW_BYTES); index * WINDOW_BYTES < end; index++) {
      const ranges = await this.window(index);
      for (let i = firstEndingAfter(ranges, start); i < ranges.length && ranges[i]! < end; i += 2) {
        const from = Math.max(ranges[i]!, start);
        const to = Math.min(ranges[i + 1]!, end);
        const last = out[out.length - 1];
        if (last !== undefined && last[1] === from) last[1] = to;
        else out.push([from, to]);
      }
    }
    return out;
  }

  private window(index: number): Promise<number[]> {
    let ranges = this.windows.get(index);
    if (ranges === undefined) {
      ranges = this.load(index);
      this.windows.set(index, ranges);
      // Chunks are asked for in increasing order, a few at a time: two windows back is done with.
      this.windows.delete(index - 2);
    }
    return ranges;
  }

  private async load(index: number): Promise<number[]> {
    const start = index * WINDOW_BYTES;
    const ranges: number[] = [];
    for (const extent of await chainStatus(this.device, start, Math.min(WINDOW_BYTES, this.device.size - start))) {
      if (extent.zero) continue;
      const end = extent.offset + extent.length;
      if (ranges.length > 0 && ranges[ranges.length - 1] === extent.offset) ranges[ranges.length - 1] = end;
      else ranges.push(extent.offset, end);
    }
    return ranges;
  }
}

/** The index (even) of the first pair in `ranges` whose end lies past `offset`; ranges.length when none. */
function firstEndingAfter(ranges: number[], offset: number): number {
  let low = 0;
  let high = ranges.length / 2;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (ranges[mid * 2 + 1]! <= offset) low = mid + 1;
    else high = mid;
  }
  return low * 2;
}
