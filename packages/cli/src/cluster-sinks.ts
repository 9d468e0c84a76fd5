import type { SequentialImageWriter } from '@q/qcow2';
import type { BlockDevice } from '@q/raw';
import type { ClusterSink } from './cluster-copy.js';

/** A fresh image written front to back (SequentialImageWriter): holes cost nothing, zeros are flagged. */
export function sequentialSink(writer: SequentialImageWriter): ClusterSink {
  return {
    data: (first, bytes) => writer.writeData(first, bytes),
    compressed: (cluster, compressed) => writer.writeCompressed(cluster, compressed),
    zero: (cluster) => writer.writeZero(cluster),
    skip: async () => undefined,
    // The writer decides the layout when called and issues the writes at once: calls need not wait for each other.
    pipelined: true,
  };
}

/** A device that can store a compressed cluster (the qcow2 engine): the capability convert -c asks for. */
export interface CompressedWriter {
  writeCompressed(offset: number, compressed: Uint8Array): Promise<void>;
}

function canCompress(device: BlockDevice): device is BlockDevice & CompressedWriter {
  return typeof (device as Partial<CompressedWriter>).writeCompressed === 'function';
}

/**
 * An image opened for writing (`-n`, or a fresh image needing the general path: preallocation, a data file).
 * Writes stop at the device's end (its last cluster may be partial). Unless the target is known to read zeros
 * (fresh, or `--target-is-zero`), ranges the source leaves empty are zeroed; `keepBelow` (-B) leaves them alone.
 */
export function deviceSink(device: BlockDevice, clusterSize: number, options: { targetIsZero: boolean; keepBelow: boolean }): ClusterSink {
  const clip = (offset: number, length: number): number => Math.max(0, Math.min(length, device.size - offset));
  const zeroes = async (offset: number, length: number): Promise<void> => {
    const inside = clip(offset, length);
    if (inside > 0) await device.writeZeroes(offset, inside, { unmap: true });
  };
  return {
    async data(first, bytes) {
      const offset = first * clusterSize;
      await device.write(bytes.subarray(0, clip(offset, bytes.length)), offset);
    },
    async compressed(cluster, compressed, plain) {
      const offset = cluster * clusterSize;
      // Only whole clusters can be stored compressed; a short last one is written plain.
      if (canCompress(device) && clip(offset, clusterSize) === clusterSize) await device.writeCompressed(offset, compressed);
      else await device.write(plain.subarray(0, clip(offset, plain.length)), offset);
    },
    zero: (cluster) => zeroes(cluster * clusterSize, clusterSize),
    async skip(first, count) {
      if (options.targetIsZero || options.keepBelow) return;
      await zeroes(first * clusterSize, count * clusterSize);
    },
  };
}
