import { describe, expect, it } from 'vitest';
import { WriteBehind } from './write-behind.js';

const MiB = 1024 * 1024;

/** A WriteBehind whose hints are recorded and finish when the test says so. */
function recorded(every: number): { behind: WriteBehind; hints: Array<[number, number]>; finish: () => Promise<void> } {
  const hints: Array<[number, number]> = [];
  const pending: Array<() => void> = [];
  const behind = new WriteBehind(7, every, (fd, offset, length) => {
    expect(fd).toBe(7);
    hints.push([offset, length]);
    return new Promise((resolve) => pending.push(() => resolve(true)));
  });
  const finish = async (): Promise<void> => {
    pending.shift()?.();
    // Let the hint's continuation run (it may start the next one).
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { behind, hints, finish };
}

describe('WriteBehind', () => {
  it('asks for nothing until `every` bytes have been written, then for the range they span', () => {
    const { behind, hints } = recorded(4 * MiB);
    behind.written(10 * MiB, MiB);
    behind.written(8 * MiB, MiB);
    behind.written(9 * MiB, MiB);
    expect(hints).toEqual([]);
    behind.written(11 * MiB, MiB);
    expect(hints).toEqual([[8 * MiB, 4 * MiB]]);
  });

  it('keeps one hint at a time: what is written meanwhile goes into the next, started when the first ends', async () => {
    const { behind, hints, finish } = recorded(2 * MiB);
    behind.written(0, 2 * MiB);
    behind.written(2 * MiB, 2 * MiB);
    behind.written(4 * MiB, 2 * MiB);
    expect(hints).toEqual([[0, 2 * MiB]]);
    await finish();
    expect(hints).toEqual([
      [0, 2 * MiB],
      [2 * MiB, 4 * MiB],
    ]);
    await finish();
    // Less than `every` since: no third hint.
    behind.written(6 * MiB, MiB);
    await finish();
    expect(hints).toHaveLength(2);
  });

  it('settles only when the running hint has ended, and at once when none runs', async () => {
    const { behind, finish } = recorded(MiB);
    await behind.settled();
    behind.written(0, MiB);
    let settled = false;
    const done = behind.settled().then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    await finish();
    await done;
    expect(settled).toBe(true);
  });

  it('survives a hint that fails: the next one still comes', async () => {
    const hints: number[] = [];
    const behind = new WriteBehind(3, MiB, (_fd, offset) => {
      hints.push(offset);
      return Promise.resolve(false);
    });
    behind.written(0, MiB);
    await behind.settled();
    behind.written(MiB, MiB);
    await behind.settled();
    expect(hints).toEqual([0, MiB]);
  });
});
