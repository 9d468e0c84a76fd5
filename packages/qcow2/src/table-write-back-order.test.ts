import { MemoryBlockFile, type BlockFile } from '@q/raw';
import { describe, expect, it } from 'vitest';
import { defaultCreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { unclosable } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

type Event = { file: 'image' | 'data'; kind: 'write' | 'flush'; offset?: number; empty?: boolean };

/** A view of `file` that logs its writes and flushes into `log`. */
function logged(file: BlockFile, name: Event['file'], log: Event[]): BlockFile {
  return {
    ...unclosable(file),
    write: (src, offset) => {
      log.push({ file: name, kind: 'write', offset, empty: src.every((byte) => byte === 0) });
      return file.write(src, offset);
    },
    flush: () => {
      log.push({ file: name, kind: 'flush' });
      return file.flush();
    },
  };
}

/**
 * An L2 table evicted between flushes names data that must already be on disk: with an external data file (and
 * with lazy refcounts, tests/crash lazy-refcounts.test.ts) nothing else orders the data's sync before the table.
 */
describe('L2 tables written back outside a flush', () => {
  it.each([false, true])('wait for the external data file to sync (lazy refcounts: %s)', async (lazyRefcounts) => {
    const clusterSize = 512;
    const tableSpan = (clusterSize / 8) * clusterSize;
    const image = new MemoryBlockFile(new Uint8Array(0), { name: 'image.qcow2' });
    const data = new MemoryBlockFile(new Uint8Array(0), { name: 'data.raw' });
    const openData = async (): Promise<BlockFile> => unclosable(data);
    await createQcow2(unclosable(image), { ...defaultCreateOptions(8 * tableSpan), clusterBits: 9, lazyRefcounts, dataFile: 'data.raw' }, { openDataFile: openData });
    const log: Event[] = [];
    const disk = await Qcow2Image.open(logged(image, 'image', log), {
      writable: true,
      l2CacheBytes: clusterSize,
      openDataFile: async () => logged(data, 'data', log),
    });
    // Four L2 tables through a cache of two: the first tables are evicted while their new entries' data is unsynced.
    for (let table = 0; table < 4; table++) await disk.write(new Uint8Array(clusterSize).fill(table + 1), table * tableSpan);
    await disk.close();

    const tables = l2TableOffsets(image.contents());
    expect(tables.size).toBe(4);
    let unsyncedData = false;
    for (const event of log) {
      if (event.file === 'data') unsyncedData = event.kind === 'write' ? true : unsyncedData && event.kind !== 'flush';
      // A new table is written empty first: it names nothing yet.
      else if (event.kind === 'write' && !event.empty && tables.has(event.offset!)) expect(unsyncedData, `L2 table written at ${event.offset}`).toBe(false);
    }
    expect(log.filter((event) => event.file === 'data' && event.kind === 'write')).toHaveLength(4);
  });
});

/** The active L2 tables' offsets, from the header's L1 table (spec: l1_size at 36, l1_table_offset at 40). */
function l2TableOffsets(bytes: Uint8Array): Set<number> {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const l1Offset = Number(view.getBigUint64(40));
  const offsets = new Set<number>();
  for (let i = 0; i < view.getUint32(36); i++) {
    const offset = Number(view.getBigUint64(l1Offset + i * 8) & 0x00ff_ffff_ffff_fe00n);
    if (offset !== 0) offsets.add(offset);
  }
  return offsets;
}
