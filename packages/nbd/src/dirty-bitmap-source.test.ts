import { describe, expect, it } from 'vitest';
import { dirtyBitmapExtents, type DirtyBitmapSource, type DirtyRun } from './dirty-bitmap-source.js';
import { NBD_STATE_DIRTY } from './protocol.js';

const G = 65536;

/** A bitmap of fixed runs that answers by clipping them, as a granularity-rounding engine might not. */
const bitmap = (runs: DirtyRun[], round = false): DirtyBitmapSource => ({
  name: 'b',
  dirtyExtents: async (offset, length) =>
    runs.filter((run) => run.offset < offset + length && run.offset + run.length > (round ? Math.floor(offset / G) * G : offset)),
});

describe('dirtyBitmapExtents', () => {
  const runs: DirtyRun[] = [
    { offset: 0, length: G, dirty: false },
    { offset: G, length: G, dirty: true },
    { offset: 2 * G, length: G, dirty: true },
    { offset: 3 * G, length: G, dirty: false },
  ];

  it('flags dirty runs 1 and clean ones 0, merging equal neighbours', async () => {
    expect(await dirtyBitmapExtents(bitmap(runs), 0, 4 * G)).toEqual([
      { length: G, flags: 0 },
      { length: 2 * G, flags: NBD_STATE_DIRTY },
      { length: G, flags: 0 },
    ]);
  });

  it('clips runs that start before or end after the range', async () => {
    expect(await dirtyBitmapExtents(bitmap(runs, true), G + 512, G)).toEqual([{ length: G, flags: NBD_STATE_DIRTY }]);
    expect(await dirtyBitmapExtents(bitmap(runs), 100, G)).toEqual([
      { length: G - 100, flags: 0 },
      { length: 100, flags: NBD_STATE_DIRTY },
    ]);
  });

  it('refuses a source with a gap, or one that answers nothing', async () => {
    const gap = bitmap([runs[0]!, runs[2]!]);
    await expect(dirtyBitmapExtents(gap, 0, 3 * G)).rejects.toThrow(/no run at offset 65536/);
    await expect(dirtyBitmapExtents(bitmap([]), 0, G)).rejects.toThrow(/returned nothing/);
  });
});
