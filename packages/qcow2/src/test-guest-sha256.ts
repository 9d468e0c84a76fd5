import { createHash } from 'node:crypto';
import type { BlockDevice } from '@q/raw';

/** For tests: the sha256 of every guest byte, read in 256 KiB requests (what the fixtures' answer files hold). */
export async function guestSha256(device: BlockDevice): Promise<string> {
  const hash = createHash('sha256');
  const chunk = new Uint8Array(256 * 1024);
  for (let offset = 0; offset < device.size; offset += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, device.size - offset));
    await device.read(part, offset);
    hash.update(part);
  }
  return hash.digest('hex');
}
