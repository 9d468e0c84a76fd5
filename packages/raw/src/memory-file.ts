import type { BlockFile, BlockFileCapabilities } from './block-file.js';
import { DiskError } from './errors.js';

/**
 * A BlockFile held in memory: for tests, for browsers, and as the private overlay of copy-on-write devices.
 * Storage grows in place (doubling) so appending writes stay cheap. With `deallocate: true` it takes deallocations
 * as a file system with holes would (the range reads as zeros), so writers that give space back can be tested in
 * memory; the memory itself is not given back.
 */
export class MemoryBlockFile implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private bytes: Uint8Array;
  private length: number;
  private closed = false;

  constructor(initial: Uint8Array = new Uint8Array(0), options: { name?: string; writable?: boolean; deallocate?: boolean } = {}) {
    this.name = options.name ?? 'memory';
    const writable = options.writable ?? true;
    this.capabilities = { writable, sparse: false, deallocate: writable && options.deallocate === true };
    this.bytes = initial;
    this.length = initial.length;
  }

  /** The current contents (a view, not a copy). */
  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  async read(dst: Uint8Array, offset: number): Promise<number> {
    this.checkOpen();
    checkOffset(offset, this.name);
    if (offset >= this.length) return 0;
    const count = Math.min(dst.length, this.length - offset);
    dst.set(this.bytes.subarray(offset, offset + count));
    return count;
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    checkOffset(offset, this.name);
    const end = offset + src.length;
    this.growStorage(end);
    this.bytes.set(src, offset);
    if (end > this.length) this.length = end;
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async size(): Promise<number> {
    this.checkOpen();
    return this.length;
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    checkOffset(size, this.name);
    if (size < this.length) {
      this.bytes.fill(0, size, this.length);
    } else {
      this.growStorage(size);
    }
    this.length = size;
  }

  /** Zeros the range (within the file: like a punched hole, it never changes the length); see the constructor. */
  async deallocate(offset: number, length: number): Promise<boolean> {
    this.checkOpen();
    this.checkWritable();
    checkOffset(offset, this.name);
    if (this.capabilities.deallocate !== true) return false;
    if (offset < this.length) this.bytes.fill(0, offset, Math.min(this.length, offset + length));
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private growStorage(end: number): void {
    if (end <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(end, this.bytes.length * 2, 4096));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  private checkOpen(): void {
    if (this.closed) throw new DiskError('E_IO', 'file is closed', { file: this.name });
  }

  private checkWritable(): void {
    if (!this.capabilities.writable) throw new DiskError('E_READ_ONLY', 'file is read-only', { file: this.name });
  }
}

function checkOffset(offset: number, name: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new DiskError('E_INVALID', `invalid offset ${offset}`, { file: name });
  }
}
