import { imageFormatOfFirstSector, type BlockFile } from '@q/raw';

/**
 * Picks the driver for a file by its first sector, as QEMU probes: a qcow2 header (the magic and a version of 2 or
 * more) means qcow2; another format's header (qcow version 1, vmdk, vdi, ...) names that format, which the caller
 * refuses as unsupported rather than read it as raw; anything else is raw. A file that starts with the qcow magic
 * and version 0 is raw, as QEMU takes it.
 */
export async function probeFormat(file: BlockFile): Promise<string> {
  const sector = new Uint8Array(512);
  const got = await file.read(sector, 0);
  return imageFormatOfFirstSector(sector.subarray(0, got)) ?? 'raw';
}
