import type { BlockFile } from '@q/raw';

const QCOW_MAGIC = [0x51, 0x46, 0x49, 0xfb];

/**
 * Picks the driver for a file by its first bytes: the qcow2 magic means qcow2, anything else is raw. (QEMU probes
 * more formats; these two are what we open, and raw is the safe default for anything unrecognised.)
 */
export async function probeFormat(file: BlockFile): Promise<'qcow2' | 'raw'> {
  const head = new Uint8Array(4);
  const got = await file.read(head, 0);
  return got === 4 && QCOW_MAGIC.every((byte, i) => head[i] === byte) ? 'qcow2' : 'raw';
}
