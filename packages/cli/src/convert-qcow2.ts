import { checkCreateOptions, createQcow2, SequentialImageWriter } from '@q/qcow2';
import { isDiskError, type BlockDevice } from '@q/raw';
import type { CompressionType } from '@q/format';
import { dataFileLocks, imageFileLocks, LOCK_USERS, toolUser } from '@q/vkd';
import { cliBlockingStore, cliStore, cliTargetStore } from './cli-store.js';
import { PLAIN_CHUNK_BYTES, plainReadsInFlight } from './copy-chunks.js';
import { copyClusters, type ClusterSink } from './cluster-copy.js';
import { deviceSink, sequentialSink } from './cluster-sinks.js';
import type { CompressPool } from './compress-pool.js';
import { qcow2CreateOptions, type QcowCreateOptions } from './create-options.js';
import { openImage } from './open-source.js';
import { ExitError, UsageError } from './usage-error.js';
import { fileOpenReason } from './describe-error.js';

export interface Qcow2ConvertOptions {
  /** `-o` as given. */
  createOptions: Map<string, string>;
  compress: boolean;
  /** `-B` / `-o backing_file` and `-F` / `-o backing_fmt`. */
  backing?: string;
  backingFormat?: string;
  /** `-n`: write into the existing image. */
  existing: boolean;
  targetIsZero: boolean;
  sparseBytes: number;
  parallel: number;
  /** `-t`: anything but unsafe (qemu-img's default, no sync) syncs the new image as it is finished. */
  durable: boolean;
  onProgress?(done: number, total: number): void;
}

/**
 * `qcow convert -O qcow2`: a fresh image is written front to back by the sequential writer (the fast path: no
 * allocator, one pass); preallocation and external data files go through the engine (createQcow2, then writes), as
 * does `-n` into an existing image. Compression runs on worker threads either way.
 */
/** The compression workers, imported (with node:worker_threads, milliseconds of a start) only for `-c`. */
async function compressPool(type: CompressionType, clusterSize: number): Promise<CompressPool> {
  const { CompressPool } = await import('./compress-pool.js');
  return new CompressPool(type, clusterSize);
}

export async function convertToQcow2(source: BlockDevice, destination: string, o: Qcow2ConvertOptions): Promise<void> {
  if (o.existing) return convertIntoExisting(source, destination, o);
  const create = createOptionsFor(source, destination, o);
  if (o.backing !== undefined) await checkBacking(destination, o.backing, o.backingFormat);
  const general = create.preallocation !== 'off' || create.dataFile !== undefined;
  const clusterSize = 2 ** create.clusterBits;
  const pool = o.compress ? await compressPool(create.compressionType, clusterSize) : undefined;
  try {
    const copy = { clusterSize, topOnly: o.backing !== undefined, sparseBytes: o.sparseBytes, zeroFlag: create.version === 3, parallel: o.parallel, pool, onProgress: o.onProgress };
    // Compression keeps cluster-copy's 4 MiB chunks (one compression job each), -m of them at once; plain copies go in
    // qemu-img's 2 MiB chunks, a few at once (copy-chunks.ts).
    const plainChunks = (): { chunkBytes?: number; parallel?: number } => (o.compress ? {} : { chunkBytes: PLAIN_CHUNK_BYTES, parallel: plainReadsInFlight(o.parallel) });
    if (!general) {
      // The writer writes one request at a time while the source is read on the pool: its writes block (a trip to
      // the pool per 256 KiB piece cost more than the copy; see cliBlockingStore). A durable image (-t other than
      // unsafe) is flushed as it is finished: its writes go out behind the copy. An unsafe one gets no write-behind
      // hints, as qemu-img leaves its output to the kernel: on ext4 the hints cost the copy 0.31 -> 0.38 s.
      const store = o.durable ? cliTargetStore('writes') : cliBlockingStore();
      const file = await store.open(destination, { create: true, truncate: true, lock: imageFileLocks('qcow2', toolUser(true), true, false) });
      try {
        const writer = await SequentialImageWriter.create(file, create, { durable: o.durable });
        await copyClusters(source, sequentialSink(writer), { ...copy, ...plainChunks() });
        await writer.finish();
      } finally {
        await file.close();
      }
      return;
    }
    const file = await cliStore().open(destination, { create: true, truncate: true, lock: imageFileLocks('qcow2', LOCK_USERS.creating, true, false) });
    await createQcow2(file, create, {
      openDataFile: (name, writable) => cliStore().open(cliStore().resolve(destination, name), writable ? { create: true, lock: dataFileLocks(true, false) } : {}),
    });
    const target = await openImage(destination, { format: 'qcow2', writable: true, ignoreBacking: true });
    await copyInto(source, target, deviceSink(target, clusterSize, { targetIsZero: true, keepBelow: o.backing !== undefined }), { ...copy, ...plainChunks() });
  } finally {
    await pool?.close();
  }
}

/** `-n`: the image exists (qemu-img opens it as the format -O names); nothing is created, so `-o` is refused. */
async function convertIntoExisting(source: BlockDevice, destination: string, o: Qcow2ConvertOptions): Promise<void> {
  if (o.createOptions.size > 0) throw new ExitError('-o has no effect when skipping image creation', 1);
  const target = await openImage(destination, { format: 'qcow2', writable: true, ignoreBacking: o.backing === undefined });
  const metadata = (target as { metadata?: { geometry: { clusterSize: number }; backingFileName: string | undefined } }).metadata;
  const geometry = metadata?.geometry;
  const clusterSize = geometry?.clusterSize ?? 65536;
  const type = (target as { compressionType?: 'zlib' | 'zstd' }).compressionType ?? 'zlib';
  if (target.size < source.size) {
    await target.close();
    throw new ExitError('output file is smaller than input file', 1);
  }
  const pool = o.compress ? await compressPool(type, clusterSize) : undefined;
  try {
    // Opened without its backing file: where the image allocates nothing, its backing file (if it names one) shows.
    const unallocatedReadsZeros = metadata !== undefined && metadata.backingFileName === undefined;
    const sink = deviceSink(target, clusterSize, { targetIsZero: o.targetIsZero, keepBelow: o.backing !== undefined, unallocatedReadsZeros });
    const zeroFlag = true; // the engine writes zeros the way the image's version allows
    await copyInto(source, target, sink, { clusterSize, topOnly: o.backing !== undefined, sparseBytes: o.sparseBytes, zeroFlag, parallel: o.parallel, pool, onProgress: o.onProgress });
  } finally {
    await pool?.close();
  }
}

/** Copies into an open target and closes it (flushing), reporting the copy's failure before the close's. */
async function copyInto(source: BlockDevice, target: BlockDevice, sink: ClusterSink, copy: Parameters<typeof copyClusters>[2]): Promise<void> {
  try {
    await copyClusters(source, sink, copy);
  } catch (error) {
    await target.close().catch(() => undefined);
    throw error;
  }
  await target.close();
}

/** The new image's options, judged as qemu-img convert judges them (its messages, its order). */
function createOptionsFor(source: BlockDevice, destination: string, o: Qcow2ConvertOptions): QcowCreateOptions {
  const options = new Map(o.createOptions);
  if (o.backing !== undefined) options.set('backing_file', o.backing);
  if (o.backingFormat !== undefined) options.set('backing_fmt', o.backingFormat);
  let create: QcowCreateOptions;
  try {
    create = qcow2CreateOptions(options, Math.ceil(source.size / 512) * 512);
  } catch (error) {
    // Unknown option names come without the file name, as from qemu-img; value complaints with it.
    if (error instanceof UsageError && error.message.startsWith('Invalid parameter')) throw new ExitError(error.message, 1);
    throw inConversion(destination, error);
  }
  if (o.compress && create.preallocation !== 'off') throw new ExitError('Compression and preallocation not supported at the same time', 1);
  // qemu-img 7.2 fails this one without a message; say why.
  if (o.compress && create.dataFile !== undefined) throw new ExitError(`${destination}: error while converting qcow2: Compression is not supported with an external data file`, 1);
  if (create.backingFile !== undefined && create.backingFormat === undefined) throw new ExitError('Use of backing file requires explicit backing format', 1);
  try {
    checkCreateOptions(create);
    if (create.backingFile !== undefined && create.preallocation !== 'off' && !create.extendedL2) {
      throw new UsageError('Backing file and preallocation can only be used at the same time if extended_l2 is on');
    }
  } catch (error) {
    throw inConversion(destination, error);
  }
  return create;
}

function inConversion(destination: string, error: unknown): unknown {
  if (error instanceof UsageError || isDiskError(error)) return new ExitError(`${destination}: error while converting qcow2: ${error.message}`, 1);
  return error;
}

/** qemu-img opens the new image's backing file (relative to the new image): a missing one fails the convert. */
async function checkBacking(destination: string, backing: string, format: string | undefined): Promise<void> {
  const path = cliStore().resolve(destination, backing);
  let device: BlockDevice;
  try {
    device = await openImage(path, { format, forceShare: true });
  } catch (error) {
    throw new ExitError(`Could not open '${destination}': Could not open backing file: ${fileOpenReason(error, backing)}`, 1);
  }
  await device.close();
}
