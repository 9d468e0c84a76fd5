import { describe, expect, it } from 'vitest';
import { hasProtocol, resolveBackingPath } from './backing-path.js';

describe('resolveBackingPath', () => {
  it('resolves relative names against the image directory, as QEMU does', () => {
    expect(resolveBackingPath('/images/vm/top.qcow2', 'base.qcow2')).toBe('/images/vm/base.qcow2');
    expect(resolveBackingPath('/images/vm/top.qcow2', '../base.qcow2')).toBe('/images/vm/../base.qcow2');
    expect(resolveBackingPath('rel/top.qcow2', 'base.raw')).toBe('rel/base.raw');
  });

  it('keeps names relative to the current directory when the image has no directory part', () => {
    expect(resolveBackingPath('top.qcow2', 'base.qcow2')).toBe('base.qcow2');
  });

  it('keeps absolute names and protocols', () => {
    expect(resolveBackingPath('/a/top.qcow2', '/b/base.qcow2')).toBe('/b/base.qcow2');
    expect(resolveBackingPath('/a/top.qcow2', 'nbd://localhost/x')).toBe('nbd://localhost/x');
    expect(hasProtocol('a:b/c')).toBe(true);
    expect(hasProtocol('dir/a:b')).toBe(false);
  });
});
