import { describe, expect, it } from 'vitest';
import { imageFormatOfFirstSector } from './image-signatures.js';
import { MemoryBlockFile } from './memory-file.js';
import { RawDisk } from './raw-disk.js';

/** A 512-byte sector holding `text` at `offset` (latin1) and `bytes` after it. */
function sector(text: string, offset = 0, bytes: number[] = []): Uint8Array {
  const out = new Uint8Array(512);
  for (let i = 0; i < text.length; i++) out[offset + i] = text.charCodeAt(i);
  out.set(bytes, offset + text.length);
  return out;
}

describe('imageFormatOfFirstSector', () => {
  it("tells the headers QEMU probes for, and qcow's magic only with a version", () => {
    expect(imageFormatOfFirstSector(sector('QFI\xfb', 0, [0, 0, 0, 3]))).toBe('qcow2');
    expect(imageFormatOfFirstSector(sector('QFI\xfb', 0, [0, 0, 0, 1]))).toBe('qcow');
    expect(imageFormatOfFirstSector(sector('QFI\xfb', 0, [0, 0, 0, 0]))).toBeUndefined();
    expect(imageFormatOfFirstSector(sector('QED\0'))).toBe('qed');
    expect(imageFormatOfFirstSector(sector('KDMV'))).toBe('vmdk');
    expect(imageFormatOfFirstSector(sector('# Disk DescriptorFile\nversion=1\n'))).toBe('vmdk');
    expect(imageFormatOfFirstSector(sector('\x7f\x10\xda\xbe', 0x40))).toBe('vdi');
    expect(imageFormatOfFirstSector(sector('conectix'))).toBe('vpc');
    expect(imageFormatOfFirstSector(sector('vhdxfile'))).toBe('vhdx');
    expect(imageFormatOfFirstSector(sector('LUKS\xba\xbe'))).toBe('luks');
    expect(imageFormatOfFirstSector(sector('WithoutFreeSpace'))).toBe('parallels');
    expect(imageFormatOfFirstSector(sector(''))).toBeUndefined();
    expect(imageFormatOfFirstSector(sector('an MBR, a file system, anything else'))).toBeUndefined();
  });
});

describe('RawDisk opened by probing', () => {
  const qcowHeader = sector('QFI\xfb', 0, [0, 0, 0, 3]);

  it('refuses a write that would make the first sector a header, in one piece or byte by byte', async () => {
    const disk = await RawDisk.open(new MemoryBlockFile(new Uint8Array(4096)), { probed: true });
    await expect(disk.write(qcowHeader, 0)).rejects.toMatchObject({ code: 'E_NOT_PERMITTED' });
    // The magic alone leaves version 0: still raw, so allowed; the version that completes the header is not.
    await disk.write(qcowHeader.subarray(0, 4), 0);
    await expect(disk.write(qcowHeader.subarray(4, 8), 4)).rejects.toMatchObject({ code: 'E_NOT_PERMITTED' });
    // Past the first sector anything goes.
    await disk.write(qcowHeader, 512);
  });

  it('allows the same write when the format was given', async () => {
    const disk = await RawDisk.open(new MemoryBlockFile(new Uint8Array(4096)));
    await disk.write(qcowHeader, 0);
    const back = new Uint8Array(8);
    await disk.read(back, 0);
    expect([...back]).toEqual([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
  });
});
