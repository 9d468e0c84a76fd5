import { describe, expect, it } from 'vitest';
import { MemoryBlockFile } from '@q/raw';
import { probeFormat } from './probe-format.js';

/** A file starting with `head` (latin1), then zeros. */
function file(head: string, length = 4096): MemoryBlockFile {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
  return new MemoryBlockFile(bytes);
}

describe('probeFormat', () => {
  it('qcow2 by its magic and a version of 2 or more; raw for anything without a header', async () => {
    expect(await probeFormat(file('QFI\xfb\0\0\0\x03'))).toBe('qcow2');
    expect(await probeFormat(file('QFI\xfb\0\0\0\x02'))).toBe('qcow2');
    expect(await probeFormat(file('QFI\xfb\0\0\0\0'))).toBe('raw');
    expect(await probeFormat(file(''))).toBe('raw');
    expect(await probeFormat(file('', 0))).toBe('raw');
    expect(await probeFormat(file('QF', 2))).toBe('raw');
  });

  it("names another format's header (to be refused, not read as raw)", async () => {
    expect(await probeFormat(file('QFI\xfb\0\0\0\x01'))).toBe('qcow');
    expect(await probeFormat(file('KDMV'))).toBe('vmdk');
    expect(await probeFormat(file('conectix'))).toBe('vpc');
  });
});
