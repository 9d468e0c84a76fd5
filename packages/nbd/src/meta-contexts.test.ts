import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '@q/raw';
import type { DirtyBitmapSource } from './dirty-bitmap-source.js';
import { exportContexts, listContexts, selectContexts } from './meta-contexts.js';

const bitmap = (name: string): DirtyBitmapSource => ({ name, dirtyExtents: async () => [] });
const contexts = exportContexts({
  device: {} as BlockDevice,
  name: '',
  readOnly: true,
  allocationDepth: true,
  dirtyBitmaps: [bitmap('b2'), bitmap('b1'), bitmap('b2')],
});
const names = (found: { name: string }[]): string[] => found.map((context) => context.name);
const ALL = ['base:allocation', 'qemu:allocation-depth', 'qemu:dirty-bitmap:b2', 'qemu:dirty-bitmap:b1'];

describe('meta contexts', () => {
  it('offers each context once, with its own id', () => {
    expect(names(contexts)).toEqual(ALL);
    expect(new Set(contexts.map((context) => context.id)).size).toBe(4);
  });

  it('lists as qemu-nbd: everything, a namespace, every bitmap, or exact names', () => {
    expect(names(listContexts(contexts, []))).toEqual(ALL);
    expect(names(listContexts(contexts, ['base:']))).toEqual(['base:allocation']);
    expect(names(listContexts(contexts, ['qemu:']))).toEqual(ALL.slice(1));
    expect(names(listContexts(contexts, ['qemu:dirty-bitmap:']))).toEqual(ALL.slice(2));
    expect(names(listContexts(contexts, ['qemu:dirty-bitmap:b1', 'base:allocation', 'base:allocation']))).toEqual([ALL[0], ALL[3]]);
    expect(names(listContexts(contexts, ['qemu:dirty-bitmap:', 'base:']))).toEqual([ALL[0], ALL[2], ALL[3]]);
  });

  it('finds nothing for unknown names, unknown namespaces and near misses', () => {
    for (const query of ['', 'qemu', 'QEMU:', 'nbd:', 'x-foo:', 'base:allocation2', 'qemu:dirty-bitmap', 'qemu:allocation-depth:', 'qemu:dirty-bitmap:nope']) {
      expect(listContexts(contexts, [query]), query).toEqual([]);
    }
  });

  it('selects exact names only, in the export order', () => {
    expect(names(selectContexts(contexts, ['qemu:dirty-bitmap:b1', 'base:allocation', 'qemu:allocation-depth']))).toEqual([ALL[0], ALL[1], ALL[3]]);
    expect(selectContexts(contexts, ['qemu:'])).toEqual([]);
    expect(selectContexts(contexts, ['qemu:dirty-bitmap:'])).toEqual([]);
    expect(selectContexts(contexts, [])).toEqual([]);
  });

  it('offers qemu contexts only when asked for', () => {
    expect(names(exportContexts({ device: {} as BlockDevice, name: '', readOnly: true }))).toEqual(['base:allocation']);
  });
});
