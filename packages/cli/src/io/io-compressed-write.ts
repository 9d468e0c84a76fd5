import type { BlockDevice } from '@q/raw';
import { Qcow2Image } from '@q/qcow2';
import { nodeCompressor } from '@q/qcow2/node';
import { IoCommandError } from './io-args.js';

/**
 * qemu-io's `write -c`: the range is stored compressed, cluster by cluster, in the image's compression type. As
 * with qemu-io the range must start on a cluster and cover whole clusters (or end at the end of the disk), and a
 * cluster that compression would not make smaller is written plain, as QEMU writes it. Devices that cannot store
 * compressed clusters (raw) refuse, as QEMU's raw driver does.
 */
export async function writeCompressedRange(device: BlockDevice, bytes: Uint8Array, offset: number): Promise<void> {
  if (!(device instanceof Qcow2Image)) throw new IoCommandError('write failed: Operation not supported');
  const { clusterSize } = device.metadata.geometry;
  const end = offset + bytes.length;
  if (offset % clusterSize !== 0 || (end % clusterSize !== 0 && end !== device.size) || end > device.size) {
    throw new IoCommandError('write failed: Invalid argument');
  }
  const compressor = nodeCompressor(device.compressionType);
  for (let at = 0; at < bytes.length; at += clusterSize) {
    const cluster = bytes.subarray(at, Math.min(bytes.length, at + clusterSize));
    // A last cluster cut short by the end of the disk is compressed padded with zeros, as QEMU pads it.
    const whole = cluster.length === clusterSize ? cluster : padded(cluster, clusterSize);
    const compressed = compressor.compress(whole);
    if (compressed === undefined) await device.write(cluster, offset + at);
    else await device.writeCompressed(offset + at, compressed);
  }
}

function padded(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(bytes);
  return out;
}
