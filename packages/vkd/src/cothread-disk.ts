import { Worker } from 'node:worker_threads';
import { checkRange, checkWritable, DiskError, type BlockDevice, type BlockStatus } from '@q/raw';
import { deserializeError, type CothreadReady, type CothreadReply, type CothreadRequest, type CothreadStart } from './cothread-protocol.js';
import type { OpenDiskOptions } from './open-disk.js';

export interface CothreadOptions extends Omit<OpenDiskOptions, 'codecs' | 'blockingIo'> {
  /** Where the built worker script is (default: `cothread-worker.js` beside this module, as published). */
  workerUrl?: URL;
}

type Pending = { resolve: (reply: CothreadReply & { ok: true }) => void; reject: (error: Error) => void };

/**
 * A disk whose requests run on a cothread (DESIGN.md): a worker thread owns the image and does the blocking I/O,
 * so the event loop that serves clients never waits on the disk. Each request is a message; replies may arrive
 * out of order and are matched by id. Errors come back per request as DiskErrors; the device stays usable.
 */
export class CothreadDisk implements BlockDevice {
  readonly name: string;
  readonly format: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly backing = undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  private constructor(worker: Worker, ready: CothreadReady & { ready: true }) {
    this.worker = worker;
    this.name = ready.name;
    this.format = ready.format;
    this.size = ready.size;
    this.readOnly = ready.readOnly;
    worker.on('message', (reply: CothreadReply) => this.settle(reply));
    worker.on('error', (error) => this.failAll(new DiskError('E_IO', `the disk's worker failed: ${error.message}`, { file: this.name })));
    worker.on('exit', () => this.failAll(new DiskError('E_IO', "the disk's worker exited", { file: this.name })));
  }

  /** Starts the worker and opens `spec` there (FILE or FILE@SNAP, as openDisk). */
  static open(spec: string, options: CothreadOptions = {}): Promise<CothreadDisk> {
    const { workerUrl, ...openOptions } = options;
    const start: CothreadStart = { spec, options: openOptions };
    const worker = new Worker(workerUrl ?? new URL('./cothread-worker.js', import.meta.url), { workerData: start });
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => {
        void worker.terminate();
        reject(error);
      };
      worker.once('error', fail);
      worker.once('message', (ready: CothreadReady) => {
        worker.off('error', fail);
        if (ready.ready) resolve(new CothreadDisk(worker, ready));
        else fail(deserializeError(ready.error));
      });
    });
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    if (dst.length === 0) return;
    const reply = await this.send({ id: 0, op: 'read', offset, length: dst.length });
    dst.set(new Uint8Array(reply.data!));
  }

  async write(src: Uint8Array, offset: number, options: { fua?: boolean } = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, src.length);
    if (src.length === 0) return;
    // The caller keeps its buffer: a copy travels (transferred, not cloned).
    const data = src.slice().buffer;
    await this.send({ id: 0, op: 'write', offset, data, fua: options.fua === true }, [data]);
  }

  async writeZeroes(offset: number, length: number, options: { unmap?: boolean } = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    await this.send({ id: 0, op: 'writeZeroes', offset, length, unmap: options.unmap === true });
  }

  async discard(offset: number, length: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    await this.send({ id: 0, op: 'discard', offset, length });
  }

  async flush(): Promise<void> {
    await this.send({ id: 0, op: 'flush' });
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    return (await this.send({ id: 0, op: 'blockStatus', offset, length })).extents ?? [];
  }

  /** Flushes and closes the disk in the worker, then stops the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.send({ id: 0, op: 'close' });
    } finally {
      this.closed = true;
      await this.worker.terminate();
    }
  }

  private send(request: CothreadRequest, transfer: ArrayBuffer[] = []): Promise<CothreadReply & { ok: true }> {
    if (this.closed) return Promise.reject(new DiskError('E_IO', 'the disk is closed', { file: this.name }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private settle(reply: CothreadReply): void {
    const waiting = this.pending.get(reply.id);
    if (waiting === undefined) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiting.resolve(reply);
    else waiting.reject(deserializeError(reply.error));
  }

  private failAll(error: Error): void {
    this.closed = true;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
