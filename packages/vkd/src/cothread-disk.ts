import type { Worker } from 'node:worker_threads';
import { checkRange, checkWritable, DiskError, type BlockDevice, type BlockStatus, type WriteZeroesOptions } from '@q/raw';
import { CothreadChannel, type CothreadReply } from './cothread-channel.js';
import { deserializeError, type CothreadLayer, type CothreadReady, type CothreadStart } from './cothread-protocol.js';
import {
  CothreadRing,
  FLAG_FAST,
  FLAG_FUA,
  FLAG_UNMAP,
  LAYER_SHIFT,
  OP_BLOCK_STATUS,
  OP_CLOSE,
  OP_DISCARD,
  OP_FLUSH,
  OP_READ,
  OP_WRITE,
  OP_WRITE_ZEROES,
  SLOT_BYTES,
} from './cothread-ring.js';
import type { OpenDiskOptions } from './open-disk.js';

export interface CothreadOptions extends Omit<OpenDiskOptions, 'codecs' | 'blockingIo' | 'store'> {
  /** Where the built worker script is (default: `cothread-worker.js` beside this module, as published). */
  workerUrl?: URL;
  /**
   * A store for the worker: the URL of a module whose `createStore()` export returns the BlockStore to open names
   * through (a store holds functions, which cannot cross to a worker thread). Default: `defaultStore()`.
   */
  storeModule?: string | URL;
}

/**
 * A disk whose requests run on a cothread (DESIGN.md): a worker thread owns the image and does the blocking I/O,
 * so the event loop that serves clients never waits on the disk. Requests travel through shared memory
 * (CothreadChannel). Each layer of the backing chain shows as its own device (`backing`), so chain walks such as
 * NBD block status see what the worker's layers hold. Errors come back per request as DiskErrors; the device
 * stays usable.
 */
export class CothreadDisk implements BlockDevice {
  readonly name: string;
  readonly format: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly backing: CothreadDisk | undefined;

  private constructor(
    private readonly channel: CothreadChannel,
    layers: CothreadLayer[],
    private readonly depth: number,
  ) {
    const layer = layers[depth]!;
    this.name = layer.name;
    this.format = layer.format;
    this.size = layer.size;
    this.readOnly = layer.readOnly;
    this.backing = depth + 1 < layers.length ? new CothreadDisk(channel, layers, depth + 1) : undefined;
  }

  /** Starts the worker and opens `spec` there (FILE or FILE@SNAP, as openDisk). */
  static async open(spec: string, options: CothreadOptions = {}): Promise<CothreadDisk> {
    // Imported when a cothread starts, not with @q/vkd: node:worker_threads costs milliseconds of every start.
    const { Worker } = await import('node:worker_threads');
    const { workerUrl, storeModule, ...openOptions } = options;
    const ring = new CothreadRing();
    const start: CothreadStart = { spec, options: openOptions, ring: ring.buffer, storeModule: storeModule?.toString() };
    const worker = new Worker(workerUrl ?? new URL('./cothread-worker.js', import.meta.url), { workerData: start });
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => {
        void worker.terminate();
        reject(error);
      };
      worker.once('error', fail);
      worker.once('message', (ready: CothreadReady) => {
        worker.off('error', fail);
        if (ready.ready) resolve(new CothreadDisk(new CothreadChannel(worker, ring, ready.layers[0]!.name), ready.layers, 0));
        else fail(deserializeError(ready.error));
      });
    });
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    // The usual request fits one slot: no pieces to gather.
    if (dst.length <= SLOT_BYTES) {
      await this.request(OP_READ, offset, dst.length, 0, undefined, dst);
      return;
    }
    const pieces: Promise<CothreadReply>[] = [];
    for (let done = 0; done < dst.length; done += SLOT_BYTES) {
      const part = dst.subarray(done, done + SLOT_BYTES);
      pieces.push(this.request(OP_READ, offset + done, part.length, 0, undefined, part));
    }
    await Promise.all(pieces);
  }

  async write(src: Uint8Array, offset: number, options: { fua?: boolean } = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, src.length);
    const flags = options.fua === true ? FLAG_FUA : 0;
    if (src.length <= SLOT_BYTES) {
      await this.request(OP_WRITE, offset, src.length, flags, src);
      return;
    }
    const pieces: Promise<CothreadReply>[] = [];
    for (let done = 0; done < src.length; done += SLOT_BYTES) {
      const part = src.subarray(done, done + SLOT_BYTES);
      pieces.push(this.request(OP_WRITE, offset + done, part.length, flags, part));
    }
    await Promise.all(pieces);
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    const flags = (options.unmap === true ? FLAG_UNMAP : 0) | (options.fast === true ? FLAG_FAST : 0);
    await this.request(OP_WRITE_ZEROES, offset, length, flags);
  }

  async discard(offset: number, length: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    await this.request(OP_DISCARD, offset, length, 0);
  }

  async flush(): Promise<void> {
    await this.request(OP_FLUSH, 0, 0, 0);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const reply = await this.request(OP_BLOCK_STATUS, offset, length, 0);
    return reply?.ok === true ? reply.extents : [];
  }

  /** Flushes and closes the disk (the whole chain) in the worker, then stops the worker. Backing layers: no-op. */
  async close(): Promise<void> {
    if (this.depth > 0 || this.channel.closed) return;
    try {
      await this.request(OP_CLOSE, 0, 0, 0);
    } finally {
      this.channel.failAll(new DiskError('E_IO', 'the disk is closed', { file: this.name }));
      await this.channel.worker.terminate();
    }
  }

  private request(op: number, offset: number, length: number, flags: number, src?: Uint8Array, dst?: Uint8Array): Promise<CothreadReply> {
    return this.channel.request(op, offset, length, flags | (this.depth << LAYER_SHIFT), src, dst);
  }
}
