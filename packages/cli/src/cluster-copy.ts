import { chainStatus, type ChainExtent } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import type { CompressPool } from './compress-pool.js';
import { copyBufferBatch } from './copy-buffers.js';
import { isAllZero } from './zero-detect.js';

/**
 * Where converted clusters go, in increasing guest order (a fresh image written front to back, or an image
 * opened for writing). `plain` is always given with `compressed`, for a sink that cannot store compressed data.
 */
export interface ClusterSink {
  /** Guest clusters `first`, `first + 1`, ... hold `bytes` (whole clusters; the disk's last one zero-padded). */
  data(first: number, bytes: Uint8Array): Promise<void>;
  compressed(cluster: number, compressed: Uint8Array, plain: Uint8Array): Promise<void>;
  /** The cluster must read as zeros whatever lies below it. */
  zero(cluster: number): Promise<void>;
  /** The source says nothing here: a fresh target already reads right; an old one may need zeros (`-n`). */
  skip(first: number, count: number): Promise<void>;
  /**
   * Calls may be made before earlier ones have settled: each takes effect in the order it was made, and the bytes
   * it was given stay untouched until its promise settles. Writes then overlap each other and the next reads.
   */
  pipelined?: boolean;
}

export interface ClusterCopyOptions {
  clusterSize: number;
  /**
   * `-B`: the target has a backing file standing in for the source's: copy only what the source's top image
   * allocates (as qemu-img convert -B does), mark its zeros, and leave the rest to the backing file.
   */
  topOnly: boolean;
  /** `-S`: all-zero runs of at least this many bytes are not stored; 0 stores everything (full allocation). */
  sparseBytes: number;
  /** Whether the sink can flag a cluster as zeros (compat 1.1); else zeros that must show are written as data. */
  zeroFlag: boolean;
  /** Chunks read (and compressed) at once: qemu-img's `-m`. */
  parallel: number;
  pool?: CompressPool;
  /** Bytes per chunk (default 4 MiB): one read, one compression job, at least one cluster. */
  chunkBytes?: number;
  onProgress?(done: number, total: number): void;
}

const CHUNK_BYTES = 4 * 1024 * 1024;
/** Chunks whose writes may be on their way at once (pipelined sinks): each holds its buffer until written. */
const WRITES_IN_FLIGHT = 3;
/** Allocation is looked up a window at a time: memory follows the extents in a window, not the disk size. */
const STATUS_WINDOW = 2 ** 30;

type Kind = 'skip' | 'zero' | 'read';

/**
 * Clusters the source leaves empty from `firstCluster` on, at least to the end of a chunk: one sink.skip call, no
 * buffer and no per-cluster plan (converting an empty 2 TiB image planned 33 million clusters one by one: 1.6-2.7 s,
 * qemu-img 54 ms).
 */
interface SkipRun {
  skipRun: true;
  firstCluster: number;
  count: number;
}

interface Chunk {
  skipRun?: undefined;
  firstCluster: number;
  kinds: Kind[];
  /** The chunk's bytes: a whole ArrayBuffer of its own when it goes to the compression workers (transferred). */
  bytes: Uint8Array;
  /** Per cluster: its compressed bytes, when compressed. */
  compressed?: Array<Uint8Array | undefined>;
  /** Clusters handed to the compressor, in order. */
  compressible?: number[];
}

/**
 * Copies `source` cluster by cluster into `sink`: chunks are planned from the chain's allocation (zeros are never
 * read), read and compressed several at once (`parallel`; compression on the worker pool), and handed to the sink
 * strictly in guest order, so the output is the same whatever order reads and workers finish in.
 */
export async function copyClusters(source: BlockDevice, sink: ClusterSink, options: ClusterCopyOptions): Promise<void> {
  const { clusterSize } = options;
  const chunkBytes = Math.max(clusterSize, options.chunkBytes ?? CHUNK_BYTES);
  const clusterCount = Math.ceil(source.size / clusterSize);
  const free: Uint8Array[] = [];
  // Plain copies take their buffers a huge page's worth at a time (copyBufferBatch: fewer page faults); buffers that
  // travel to the compression workers are whole ArrayBuffers, as a transfer moves all of one.
  const newBuffer = (): Uint8Array => {
    if (options.pool !== undefined) return new Uint8Array(chunkBytes);
    free.push(...copyBufferBatch(chunkBytes));
    return free.pop()!;
  };
  const inFlight: Array<Promise<Chunk | SkipRun>> = [];
  /** Chunks handed to a pipelined sink, oldest first: each settles once its writes have landed. */
  const writing: Array<Promise<void>> = [];
  let done = 0;

  const written = (chunk: Chunk | SkipRun): void => {
    if (chunk.skipRun !== true) free.push(chunk.bytes);
    const count = chunk.skipRun === true ? chunk.count : chunk.kinds.length;
    done = Math.max(done, Math.min(source.size, (chunk.firstCluster + count) * clusterSize));
    options.onProgress?.(done, source.size);
  };
  const drainOne = async (): Promise<void> => {
    const chunk = await inFlight.shift()!;
    if (chunk.skipRun === true) {
      // In guest order like every call; a pipelined sink orders it after the writes already on their way.
      const skipped = sink.skip(chunk.firstCluster, chunk.count).then(() => written(chunk));
      if (sink.pipelined !== true) return skipped;
      skipped.catch(() => undefined);
      writing.push(skipped);
      while (writing.length >= WRITES_IN_FLIGHT) await writing.shift();
      return;
    }
    if (sink.pipelined !== true) {
      await deliver(chunk, sink, clusterSize, options.zeroFlag, false);
      written(chunk);
      return;
    }
    const landed = deliver(chunk, sink, clusterSize, options.zeroFlag, true).then(() => written(chunk));
    // Settled in order below; a failure meanwhile must not count as unhandled.
    landed.catch(() => undefined);
    writing.push(landed);
    while (writing.length >= WRITES_IN_FLIGHT) await writing.shift();
  };

  try {
    const chunkClusters = chunkBytes / clusterSize;
    for (let window = 0; window < source.size; window += STATUS_WINDOW) {
      const windowEnd = Math.min(source.size, window + STATUS_WINDOW);
      const extents = await chainStatus(source, window, windowEnd - window);
      const windowClusters = windowEnd === source.size ? clusterCount : windowEnd / clusterSize;
      let next = 0;
      // Chunks keep to multiples of chunkBytes (the windows are too), so a chunk never reaches past its window's
      // extents; a skip run may end anywhere, and the chunk after it ends at the next multiple.
      for (let firstCluster = window / clusterSize; firstCluster < windowClusters; ) {
        const chunkEnd = Math.min(windowClusters, (Math.floor(firstCluster / chunkClusters) + 1) * chunkClusters);
        while (next < extents.length && extents[next]!.offset + extents[next]!.length <= firstCluster * clusterSize) next++;
        const skipEnd = Math.min(windowClusters, skipRunEnd(extents, next, firstCluster, clusterSize, source.size, options));
        while (inFlight.length >= options.parallel) await drainOne();
        let task: Promise<Chunk | SkipRun>;
        if (skipEnd >= chunkEnd) {
          task = Promise.resolve({ skipRun: true, firstCluster, count: skipEnd - firstCluster });
          firstCluster = skipEnd;
        } else {
          const kinds: Kind[] = [];
          for (let cluster = firstCluster; cluster < chunkEnd; cluster++) {
            const from = cluster * clusterSize;
            const to = Math.min(source.size, from + clusterSize);
            while (next < extents.length && extents[next]!.offset + extents[next]!.length <= from) next++;
            kinds.push(classify(extents, next, from, to, options));
          }
          task = prepare(source, { firstCluster, kinds, bytes: free.pop() ?? newBuffer() }, options);
          firstCluster = chunkEnd;
        }
        // Settled in order by drainOne; a failure meanwhile must not count as unhandled.
        task.catch(() => undefined);
        inFlight.push(task);
      }
    }
    while (inFlight.length > 0) await drainOne();
    while (writing.length > 0) await writing.shift();
  } finally {
    await Promise.allSettled([...inFlight, ...writing]);
  }
}

/** Whether a cluster made of such extents only is a skip: with -B, nothing of the top image; else zeros, with -S. */
function skippable(extent: ChainExtent, options: ClusterCopyOptions): boolean {
  return options.topOnly ? !(extent.depth === 0 && extent.present) : extent.zero && options.sparseBytes !== 0;
}

/**
 * The first cluster from `firstCluster` on that is not a skip: the end of the run of skippable extents starting at
 * extents[first], in whole clusters (the disk's last, partial cluster counts when the run reaches the end).
 */
function skipRunEnd(extents: ChainExtent[], first: number, firstCluster: number, clusterSize: number, size: number, options: ClusterCopyOptions): number {
  let end = firstCluster * clusterSize;
  for (let i = first; i < extents.length && extents[i]!.offset <= end && skippable(extents[i]!, options); i++) end = extents[i]!.offset + extents[i]!.length;
  return end >= size ? Math.ceil(size / clusterSize) : Math.floor(end / clusterSize);
}

/** What a cluster needs, from the extents of the chain that overlap `[from, to)` (at least one: they cover it). */
function classify(extents: ChainExtent[], first: number, from: number, to: number, options: ClusterCopyOptions): Kind {
  let allSkippable = true;
  let allTopZero = true;
  for (let i = first; i < extents.length && extents[i]!.offset < to; i++) {
    const extent = extents[i]!;
    if (!skippable(extent, options)) allSkippable = false;
    if (!(extent.depth === 0 && extent.present && extent.zero)) allTopZero = false;
  }
  if (allSkippable) return 'skip';
  // -B: zeros the top image decides must hide the new backing file.
  if (options.topOnly && allTopZero) return options.sparseBytes === 0 ? 'read' : 'zero';
  return 'read';
}

/** Reads a chunk's clusters, turns all-zero ones into holes (or zero clusters) and compresses the rest. */
async function prepare(source: BlockDevice, chunk: Chunk, options: ClusterCopyOptions): Promise<Chunk> {
  const { clusterSize } = options;
  const { bytes, kinds } = chunk;
  const reads: Promise<void>[] = [];
  for (let i = 0; i < kinds.length; ) {
    if (kinds[i] !== 'read') {
      i++;
      continue;
    }
    let end = i;
    while (end < kinds.length && kinds[end] === 'read') end++;
    const offset = (chunk.firstCluster + i) * clusterSize;
    const inside = Math.min(source.size - offset, (end - i) * clusterSize);
    const part = bytes.subarray(i * clusterSize, end * clusterSize);
    // The disk's last cluster may be partial: past the end it reads (and is stored) as zeros.
    if (inside < part.length) part.fill(0, inside);
    reads.push(source.read(part.subarray(0, inside), offset));
    i = end;
  }
  await Promise.all(reads);
  if (options.sparseBytes !== 0) findZeros(bytes, kinds, options);
  if (options.pool !== undefined) {
    const compressible = kinds.flatMap((kind, i) => (kind === 'read' ? [i] : []));
    if (compressible.length > 0) {
      const { buffer, results } = await options.pool.compress(bytes.buffer as ArrayBuffer, compressible);
      chunk.bytes = new Uint8Array(buffer);
      chunk.compressed = [];
      compressible.forEach((cluster, i) => (chunk.compressed![cluster] = results[i]));
    }
  }
  return chunk;
}

/**
 * Turns all-zero clusters into holes (zero clusters when a backing file would show through). With `-S` above the
 * cluster size, only zero runs at least that long count, as qemu-img's sparse size means.
 */
function findZeros(bytes: Uint8Array, kinds: Kind[], options: ClusterCopyOptions): void {
  const { clusterSize, sparseBytes } = options;
  for (let i = 0; i < kinds.length; ) {
    if (kinds[i] !== 'read' || !isAllZero(bytes.subarray(i * clusterSize, (i + 1) * clusterSize))) {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < kinds.length && kinds[end] === 'read' && isAllZero(bytes.subarray(end * clusterSize, (end + 1) * clusterSize))) end++;
    if ((end - i) * clusterSize >= sparseBytes) kinds.fill(options.topOnly ? 'zero' : 'skip', i, end);
    i = end;
  }
}

/**
 * Hands a chunk to the sink in guest order; consecutive plain clusters go as one run. `pipelined`: every call is
 * made at once, in order, without waiting for the one before (the sink orders them), and the result settles when
 * all have; otherwise each call waits for the one before.
 */
async function deliver(chunk: Chunk, sink: ClusterSink, clusterSize: number, zeroFlag: boolean, pipelined: boolean): Promise<void> {
  const calls = sinkCalls(chunk, sink, clusterSize, zeroFlag);
  if (pipelined) await Promise.all(calls.map((call) => call()));
  else for (const call of calls) await call();
}

/** The sink calls a chunk needs, in guest order (made by the caller, so it decides whether they overlap). */
function sinkCalls(chunk: Chunk, sink: ClusterSink, clusterSize: number, zeroFlag: boolean): Array<() => Promise<void>> {
  const { bytes, kinds, firstCluster } = chunk;
  const calls: Array<() => Promise<void>> = [];
  for (let i = 0; i < kinds.length; ) {
    const kind = kinds[i]!;
    const at = firstCluster + i;
    const plain = (j: number): boolean => kinds[j] === 'read' && chunk.compressed?.[j] === undefined;
    if (kind === 'zero' && !zeroFlag) {
      // No zero flag (compat 0.10): zeros that must hide the backing file are stored.
      bytes.fill(0, i * clusterSize, (i + 1) * clusterSize);
      kinds[i] = 'read';
      continue;
    }
    if (kind === 'zero') {
      calls.push(() => sink.zero(at));
      i++;
    } else if (kind === 'skip') {
      let end = i + 1;
      while (end < kinds.length && kinds[end] === 'skip') end++;
      const count = end - i;
      calls.push(() => sink.skip(at, count));
      i = end;
    } else if (!plain(i)) {
      const compressed = chunk.compressed![i]!;
      const plainBytes = bytes.subarray(i * clusterSize, (i + 1) * clusterSize);
      calls.push(() => sink.compressed(at, compressed, plainBytes));
      i++;
    } else {
      let end = i + 1;
      while (end < kinds.length && plain(end)) end++;
      const run = bytes.subarray(i * clusterSize, end * clusterSize);
      calls.push(() => sink.data(at, run));
      i = end;
    }
  }
  return calls;
}
