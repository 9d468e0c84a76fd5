import type { BlockFile, BlockFileCapabilities } from './block-file.js';
import type { BlockStore, StoreCapabilities, StoreOpenOptions } from './block-store.js';
import { DiskError } from './errors.js';
import { resolveFileName } from './store-names.js';

/**
 * Read-only files over Blobs: a browser's File from `<input type=file>` or a drop, a Blob built in memory (Node 20
 * has Blob too). Each read is one `slice().arrayBuffer()`: the browser reads only those bytes from disk.
 */
export class BlobStore implements BlockStore {
  readonly capabilities: StoreCapabilities = { write: false, lock: false, deallocate: false };
  private readonly blobs = new Map<string, Blob>();

  /** Blobs by name; a File may be added without a name (its own `name` is used). */
  constructor(blobs: Iterable<[string, Blob]> = []) {
    for (const [name, blob] of blobs) this.blobs.set(name, blob);
  }

  /** Adds `blob` under `name` (default: a File's own name), replacing what was there. */
  add(blob: Blob, name = (blob as Partial<File>).name): this {
    if (name === undefined || name === '') throw new DiskError('E_INVALID', 'a Blob needs a name in a BlobStore');
    this.blobs.set(name, blob);
    return this;
  }

  async open(name: string, options: StoreOpenOptions = {}): Promise<BlockFile> {
    if (options.writable === true || options.create === true) {
      throw new DiskError('E_READ_ONLY', 'Blobs are read-only', { file: name });
    }
    const blob = this.blobs.get(name);
    if (blob === undefined) throw new DiskError('E_NOT_FOUND', 'No such file or directory', { file: name });
    return new BlobBlockFile(blob, name);
  }

  resolve(base: string, name: string): string {
    return resolveFileName(base, name);
  }

  async identify(name: string): Promise<string> {
    return name;
  }

  async exists(name: string): Promise<boolean> {
    return this.blobs.has(name);
  }
}

/** A read-only BlockFile over one Blob. */
export class BlobBlockFile implements BlockFile {
  readonly capabilities: BlockFileCapabilities = { writable: false, sparse: false };
  private closed = false;

  constructor(
    private readonly blob: Blob,
    readonly name: string,
  ) {}

  async read(dst: Uint8Array, offset: number): Promise<number> {
    this.checkOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DiskError('E_INVALID', `invalid offset ${offset}`, { file: this.name });
    if (offset >= this.blob.size || dst.length === 0) return 0;
    const end = Math.min(this.blob.size, offset + dst.length);
    let bytes: ArrayBuffer;
    try {
      bytes = await this.blob.slice(offset, end).arrayBuffer();
    } catch (error) {
      // A File whose underlying disk file changed or vanished since it was picked fails to read (NotReadableError).
      throw new DiskError('E_IO', `reading the Blob failed: ${(error as Error).message}`, { file: this.name, offset, cause: error });
    }
    dst.set(new Uint8Array(bytes));
    return bytes.byteLength;
  }

  async write(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'Blobs are read-only', { file: this.name });
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async size(): Promise<number> {
    this.checkOpen();
    return this.blob.size;
  }

  async truncate(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'Blobs are read-only', { file: this.name });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new DiskError('E_IO', 'file is closed', { file: this.name });
  }
}
