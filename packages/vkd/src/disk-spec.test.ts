import { describe, expect, it } from 'vitest';
import { parseDiskSpec } from './disk-spec.js';

describe('parseDiskSpec', () => {
  const none = (): boolean => false;

  it('reads FILE@SNAP as a snapshot of FILE', () => {
    expect(parseDiskSpec('vm.qcow2@before', none)).toEqual({ path: 'vm.qcow2', snapshot: 'before' });
    expect(parseDiskSpec('/a@b/vm.qcow2@1', none)).toEqual({ path: '/a@b/vm.qcow2', snapshot: '1' });
  });

  it('keeps a plain file name', () => {
    expect(parseDiskSpec('vm.qcow2', none)).toEqual({ path: 'vm.qcow2' });
    expect(parseDiskSpec('vm.qcow2@', none)).toEqual({ path: 'vm.qcow2@' });
    expect(parseDiskSpec('@x', none)).toEqual({ path: '@x' });
    expect(parseDiskSpec('https://user@host/vm.qcow2', none)).toEqual({ path: 'https://user@host/vm.qcow2' });
    expect(parseDiskSpec('https://user@host/vm.qcow2@snap', none)).toEqual({ path: 'https://user@host/vm.qcow2', snapshot: 'snap' });
  });

  it('prefers an existing file whose name contains @', () => {
    expect(parseDiskSpec('disk@home', (p) => p === 'disk@home')).toEqual({ path: 'disk@home' });
  });
});
