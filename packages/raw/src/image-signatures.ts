/**
 * What a raw file's first sector would make of it if its format were probed: the name of the image format whose
 * header it carries, or undefined when it would still be taken for raw. QEMU probes its formats by these headers
 * (each format's own specification says where its signature lies), so a raw image whose first sector came to
 * carry one would be opened as that format the next time its format is guessed: a guest could point "its" image
 * at any file of the host as a backing file. A raw disk opened by probing refuses writes that would do that, as
 * QEMU's raw driver does.
 *
 * Wider than the formats this project opens: any format QEMU would recognise counts, since QEMU may be the next
 * to open the file.
 */
export function imageFormatOfFirstSector(sector: Uint8Array): string | undefined {
  const at = (offset: number, signature: string): boolean => {
    if (offset + signature.length > sector.length) return false;
    for (let i = 0; i < signature.length; i++) if (sector[offset + i] !== signature.charCodeAt(i)) return false;
    return true;
  };
  const bigEndian32 = (offset: number): number =>
    offset + 4 > sector.length ? 0 : ((sector[offset]! << 24) | (sector[offset + 1]! << 16) | (sector[offset + 2]! << 8) | sector[offset + 3]!) >>> 0;
  // qcow (version 1) and qcow2 (2 and 3): "QFI\xfb" and a version of at least 1 (docs/interop/qcow2.txt).
  if (at(0, 'QFI\xfb') && bigEndian32(4) >= 1) return bigEndian32(4) === 1 ? 'qcow' : 'qcow2';
  if (at(0, 'QED\0')) return 'qed';
  // VMDK: a sparse extent's "KDMV", a hosted one's "COWD", or a text descriptor.
  if (at(0, 'KDMV') || at(0, 'COWD') || at(0, '# Disk DescriptorFile')) return 'vmdk';
  // VDI: its signature 0xbeda107f, little-endian, after the 64-byte text of the pre-header.
  if (at(0x40, '\x7f\x10\xda\xbe')) return 'vdi';
  if (at(0, 'conectix')) return 'vpc';
  if (at(0, 'vhdxfile')) return 'vhdx';
  if (at(0, 'LUKS\xba\xbe')) return 'luks';
  if (at(0, 'Bochs Virtual HD Image')) return 'bochs';
  if (at(0, '#!/bin/sh\n#V2.0 Format\n')) return 'cloop';
  if (at(0, 'WithoutFreeSpace') || at(0, 'WithouFreSpacExt')) return 'parallels';
  return undefined;
}
