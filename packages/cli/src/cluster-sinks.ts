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

/** Target ranges looked up at once when skipping. */
const STATUS_WINDOW = 2 ** 30;

export interface DeviceSinkOptions {
  /** The target reads as zeros wherever nothing is written (fresh, or `--target-is-zero`). */
  targetIsZero: boolean;
  /** `-B`: what the source leaves empty is left to the target's backing file. */
  keepBelow: boolean;
  /**
   * Where the target allocates nothing it reads as zeros (it names no backing file), so skipping leaves it alone;
   * otherwise only its zero extents are left alone. `device.backing` cannot say: `-n` opens it without its chain.
   */
  unallocatedReadsZeros?: boolean;
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
export function deviceSink(device: BlockDevice, clusterSize: number, options: DeviceSinkOptions): ClusterSink {
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
      // Only what does not read as zeros already, a window at a time: zeroing the empty space of a 4 TiB target
      // cluster by cluster took minutes (qemu-img flags every cluster zero: 11 s, and 512 MiB of L2 tables).
      const start = first * clusterSize;
      const end = start + clip(start, count * clusterSize);
      for (let window = start; window < end; window += STATUS_WINDOW) {
        for (const status of await device.blockStatus(window, Math.min(STATUS_WINDOW, end - window))) {
          if (status.kind !== 'zero' && !(status.kind === 'unallocated' && options.unallocatedReadsZeros === true)) await zeroes(status.offset, status.length);
        }
      }
    },
  };
}
