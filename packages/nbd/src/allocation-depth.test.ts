import { describe, expect, it } from 'vitest';
import type { BlockDevice, BlockStatus } from '@q/raw';
import { allocationDepthExtents } from './allocation-depth.js';
import { clipStatuses } from './test-client.js';

const K = 4096;

/** A layer whose block status is fixed, over an optional backing layer (the engine's chains are tested in tests/nbd). */
const layer = (size: number, statuses: BlockStatus[], backing?: BlockDevice): BlockDevice =>
  ({
    name: 'layer',
    format: 'qcow2',
    size,
    readOnly: true,
    backing,
    blockStatus: async (offset: number, length: number) => clipStatuses(statuses, offset, length),
  }) as unknown as BlockDevice;

describe('allocationDepthExtents', () => {
  it('numbers layers from 1 at the top, counts zero clusters as allocated, and 0 for what no layer has', async () => {
    const base = layer(4 * K, [
      { offset: 0, length: K, kind: 'data', hostOffset: 0 },
      { offset: K, length: K, kind: 'zero' },
      { offset: 2 * K, length: 2 * K, kind: 'unallocated' },
    ]);
    const top = layer(4 * K, [
      { offset: 0, length: K, kind: 'unallocated' },
      { offset: K, length: K, kind: 'unallocated' },
      { offset: 2 * K, length: K, kind: 'zero' },
      { offset: 3 * K, length: K, kind: 'unallocated' },
    ], base);
    expect(await allocationDepthExtents(top, 0, 4 * K)).toEqual([
      { length: 2 * K, flags: 2 },
      { length: K, flags: 1 },
      { length: K, flags: 0 },
    ]);
  });

  it("reports what lies past a shorter backing file at that file's depth, as qemu-nbd does", async () => {
    const base = layer(K, [{ offset: 0, length: K, kind: 'unallocated' }]);
    const middle = layer(2 * K, [{ offset: 0, length: 2 * K, kind: 'unallocated' }], base);
    const top = layer(4 * K, [
      { offset: 0, length: 3 * K, kind: 'unallocated' },
      { offset: 3 * K, length: K, kind: 'data', hostOffset: 0 },
    ], middle);
    // [0, K): no layer has it (0); [K, 2K): the middle leaves it past the base's end (3); [2K, 3K): the top leaves
    // it past the middle's end (2).
    expect(await allocationDepthExtents(top, 0, 4 * K)).toEqual([
      { length: K, flags: 0 },
      { length: K, flags: 3 },
      { length: K, flags: 2 },
      { length: K, flags: 1 },
    ]);
  });

  it('answers only the range asked for', async () => {
    const top = layer(4 * K, [{ offset: 0, length: 4 * K, kind: 'data', hostOffset: 0 }]);
    expect(await allocationDepthExtents(top, K, 100)).toEqual([{ length: 100, flags: 1 }]);
  });
});
