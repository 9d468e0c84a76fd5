import { createHash } from 'node:crypto';
import type { BlockDevice } from '@q/raw';

/** SHA-256 of a device's guest bytes, read a MiB at a time: what the fixtures' answers record (tests only). */
export async function guestSha256(device: BlockDevice): Promise<string> {
  const hash = createHash('sha256');
  const chunk = new Uint8Array(1 << 20);
  for (let offset = 0; offset < device.size; offset += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, device.size - offset));
    await device.read(part, offset);
    hash.update(part);
  }
  return hash.digest('hex');
}
