import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeHeader, geometryOf, type SnapshotEntry } from '@q/format';
import { MemoryBlockFile } from '@q/raw';
import { findSnapshot, findSnapshotBy, requireSnapshot } from './snapshot-lookup.js';
import { readSnapshotL1, snapshotDiskSize } from './snapshot-l1.js';
import { readSnapshotTable } from './snapshot-table-reader.js';

const bytes = new Uint8Array(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images', 'snapshots.qcow2')));
const header = decodeHeader(bytes);

describe('reading the snapshot table of an image made by qemu-img', () => {
  it('reads both snapshots and their L1 tables', async () => {
    const file = new MemoryBlockFile(bytes, { writable: false });
    const entries = await readSnapshotTable(file, header.snapshotsOffset, header.nbSnapshots, bytes.length);
    expect(entries.map((e) => e.name)).toEqual(['first', 'second']);
    const l1 = await readSnapshotL1(file, entries[0]!, geometryOf(header), bytes.length);
    expect(l1.length).toBe(8);
    expect(snapshotDiskSize(entries[0]!, header.size)).toBe(1024 * 1024);
  });

  it('refuses a table that runs past the end of the file', async () => {
    const cut = bytes.slice(0, header.snapshotsOffset + 50);
    const file = new MemoryBlockFile(cut, { writable: false });
    await expect(readSnapshotTable(file, header.snapshotsOffset, 2, cut.length)).rejects.toMatchObject({ code: 'E_PAST_EOF' });
  });

  it('reads a huge claimed count only as far as the file goes', async () => {
    const file = new MemoryBlockFile(bytes, { writable: false });
    await expect(readSnapshotTable(file, header.snapshotsOffset, 65536, bytes.length)).rejects.toMatchObject({ code: 'E_PAST_EOF' });
  });
});

describe('finding snapshots as qemu-img does', () => {
  const entry = (id: string, name: string): SnapshotEntry =>
    ({ id, name, l1TableOffset: 0, l1Size: 0, dateSeconds: 0, dateNanoseconds: 0, vmClockNanoseconds: 0, vmStateSize: 0, diskSize: undefined, icount: undefined, extraData: new Uint8Array(0) });
  const entries = [entry('1', '2'), entry('2', 'base')];

  it('matches an id before a name', () => {
    expect(findSnapshot(entries, '2')?.name).toBe('base');
    expect(findSnapshot(entries, 'base')?.id).toBe('2');
    expect(findSnapshot(entries, 'nope')).toBeUndefined();
  });

  it('matches by one key when asked', () => {
    expect(findSnapshotBy(entries, { name: '2' })?.id).toBe('1');
    expect(findSnapshotBy(entries, { id: '1', name: 'base' })).toBeUndefined();
  });

  it('names the missing snapshot', () => {
    expect(() => requireSnapshot(entries, 'x', 'vm.qcow2')).toThrow("Can't find snapshot 'x'");
  });
});
