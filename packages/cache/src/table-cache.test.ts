import { describe, expect, it } from 'vitest';
import { TableCache } from './table-cache.js';

function tableAt(offset: number): Uint8Array {
  return new Uint8Array(16).fill(offset & 0xff);
}

describe('TableCache', () => {
  it('keeps at most budget/tableBytes tables, evicting the least recently used', async () => {
    const loads: number[] = [];
    const cache = new TableCache({
      budgetBytes: 48,
      tableBytes: 16,
      load: async (offset) => (loads.push(offset), tableAt(offset)),
    });
    expect(cache.capacity).toBe(3);
    await cache.get(1);
    await cache.get(2);
    await cache.get(3);
    await cache.get(1); // 1 becomes most recent; 2 is now the oldest
    await cache.get(4);
    expect(cache.peek(2)).toBeUndefined();
    expect(cache.peek(1)).toEqual(tableAt(1));
    expect(loads).toEqual([1, 2, 3, 4]);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 4 });
  });

  it('shares one load between concurrent misses', async () => {
    let loads = 0;
    const cache = new TableCache({
      budgetBytes: 1024,
      tableBytes: 16,
      load: async (offset) => {
        loads++;
        await new Promise((r) => setTimeout(r, 5));
        return tableAt(offset);
      },
    });
    const [a, b] = await Promise.all([cache.get(7), cache.get(7)]);
    expect(a).toBe(b);
    expect(loads).toBe(1);
  });

  it('writes dirty tables back on eviction and flush, after the ordering hook', async () => {
    const events: string[] = [];
    const cache = new TableCache({
      budgetBytes: 32,
      tableBytes: 16,
      load: async (offset) => tableAt(offset),
      writeBack: async (offset) => void events.push(`write ${offset}`),
      beforeWriteBack: async () => void events.push('hook'),
    });
    const t1 = await cache.get(1);
    t1[0] = 99;
    cache.markDirty(1);
    await cache.get(2);
    await cache.get(3); // evicts 1 (dirty) after trying clean ones in the scan window... 2 is clean, so 2 goes
    expect(events).toEqual([]);
    expect(cache.peek(2)).toBeUndefined();
    await cache.flush();
    expect(events).toEqual(['hook', 'write 1']);
    await cache.flush();
    expect(events).toHaveLength(2);
  });

  it('rejects a load of the wrong size', async () => {
    const cache = new TableCache({ budgetBytes: 64, tableBytes: 16, load: async () => new Uint8Array(3) });
    await expect(cache.get(0)).rejects.toThrow('expected 16');
  });

  it('keeps at least minEntries tables with a tiny budget', () => {
    const cache = new TableCache({ budgetBytes: 0, tableBytes: 1 << 21, load: async () => new Uint8Array(0) });
    expect(cache.capacity).toBe(2);
  });
});
