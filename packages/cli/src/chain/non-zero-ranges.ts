import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';

/** Bytes of a chain looked up at once. */
const WINDOW_BYTES = 64 << 20;
/** The longest lookup while jumping over empty space (not kept: only where the next data starts is used). */
const MAX_JUMP_BYTES = 2 ** 34;

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

  /**
   * The first offset in `[start, end)` where the chain holds bytes that do not read as zeros; `end` when there is
   * none. `end` must not pass the device's size. The window of `start` and the one after it are looked up as for
   * `within`; past two empty windows the rest is looked up in growing jumps, without keeping it: a rebase of an empty
   * 2 TiB overlay asked 2 million chunks one by one (7.4 s; qemu-img 7.2 took 98 s).
   */
  async nextNonZero(start: number, end: number): Promise<number> {
    const first = Math.floor(start / WINDOW_BYTES);
    for (let index = first; index <= first + 1 && index * WINDOW_BYTES < end; index++) {
      const ranges = await this.window(index);
      const i = firstEndingAfter(ranges, start);
      if (i < ranges.length) return Math.min(end, Math.max(ranges[i]!, start));
    }
    // Jumps double (up to MAX_JUMP_BYTES), so a jump never looks up much more than the empty space before it.
    for (let at = (first + 2) * WINDOW_BYTES, jump = 2 * WINDOW_BYTES; at < end; at += jump, jump = Math.min(2 * jump, MAX_JUMP_BYTES)) {
      for (const extent of await chainStatus(this.device, at, Math.min(jump, end - at))) if (!extent.zero) return extent.offset;
    }
    return end;
  }

  private window(index: number): Promise<number[]> {
    let ranges = this.windows.get(index);
    if (ranges === undefined) {
      ranges = this.load(index);
      this.windows.set(index, ranges);
      // Chunks are asked for in increasing order, a few at a time: windows two or more back are done with (and a
      // skip over empty space may have jumped far ahead of them).
      for (const old of this.windows.keys()) if (old <= index - 2) this.windows.delete(old);
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
