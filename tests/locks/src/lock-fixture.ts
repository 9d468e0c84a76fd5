import { writeFileSync } from 'node:fs';
import { qemuImg, qemuIo } from '@q/test-support';
import { overlayOf, rawOf, withDataFile } from './holders.js';

/**
 * A fresh set of images for one holder: `image` (qcow2 with data), its overlay, an image whose external data file
 * is `data`, a raw image, and a zero raw file to convert from. Every holder gets its own, so what one probe writes never
 * changes what the next holder sees.
 */
export function makeLockFixture(path: (name: string) => string, tag: string): { image: string; base: string; data: string; raw: string } {
  const image = path(`${tag}.qcow2`);
  qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
  qemuIo(image, ['write -P 0x5a 0 64k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', overlayOf(image)]);
  const data = path(`${tag}.data.raw`);
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${data}`, withDataFile(image), '16M']);
  writeFileSync(path('zero.raw'), new Uint8Array(16 << 20));
  writeFileSync(rawOf(image), new Uint8Array(16 << 20).fill(0x5a));
  return { image, base: image, data, raw: rawOf(image) };
}
