import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CompressionType } from '@q/format';

/** Sent to a worker: a chunk of guest clusters (transferred, not copied) and which of them to compress. */
export interface CompressRequest {
  id: number;
  type: CompressionType;
  clusterSize: number;
  buffer: ArrayBuffer;
  clusters: number[];
}

/** A worker's answer: the chunk back, the compressed clusters end to end, and each one's length (-1: keep plain). */
export interface CompressReply {
  id: number;
  buffer: ArrayBuffer;
  out?: ArrayBuffer;
  lengths?: Int32Array;
  error?: string;
}

export interface CompressedChunk {
  /** The chunk's bytes, handed back by the worker. */
  buffer: ArrayBuffer;
  /** For each requested cluster, its compressed bytes, or undefined when it is stored plain. */
  results: Array<Uint8Array | undefined>;
}

interface Pending {
  resolve(chunk: CompressedChunk): void;
  reject(error: Error): void;
}

/**
 * Compression on worker threads, one worker per core the process may use. Chunks go to the least busy worker and
 * come back whenever they are done; the caller writes results in guest order, so the image is the same whatever
 * the timing. The buffers travel by transfer: a chunk costs no copy either way.
 */
export class CompressPool {
  private readonly workers: Array<{ worker: Worker; busy: number }> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(
    private readonly type: CompressionType,
    private readonly clusterSize: number,
    size = availableParallelism(),
  ) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const worker = new Worker(new URL('./compress-worker.js', import.meta.url));
      const slot = { worker, busy: 0 };
      worker.on('message', (reply: CompressReply) => this.settle(slot, reply));
      worker.on('error', (error) => this.fail(error));
      this.workers.push(slot);
    }
  }

  /** Compresses `clusters` (indices into `buffer`, in cluster units). `buffer` is unusable until the promise settles. */
  compress(buffer: ArrayBuffer, clusters: number[]): Promise<CompressedChunk> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const slot = this.workers.reduce((best, next) => (next.busy < best.busy ? next : best));
    const id = this.nextId++;
    slot.busy++;
    const request: CompressRequest = { id, type: this.type, clusterSize: this.clusterSize, buffer, clusters };
    const result = new Promise<CompressedChunk>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    slot.worker.postMessage(request, [buffer]);
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
  }

  private settle(slot: { busy: number }, reply: CompressReply): void {
    slot.busy--;
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (waiter === undefined) return;
    if (reply.error !== undefined || reply.lengths === undefined || reply.out === undefined) {
      waiter.reject(new Error(reply.error ?? 'compression worker failed'));
      return;
    }
    const out = new Uint8Array(reply.out);
    let at = 0;
    const results = Array.from(reply.lengths, (length) => {
      if (length < 0) return undefined;
      const piece = out.subarray(at, at + length);
      at += length;
      return piece;
    });
    waiter.resolve({ buffer: reply.buffer, results });
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
