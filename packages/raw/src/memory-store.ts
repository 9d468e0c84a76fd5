import type { BlockFile, BlockFileCapabilities } from './block-file.js';
import type { BlockStore, StoreCapabilities, StoreOpenOptions } from './block-store.js';
import { DiskError } from './errors.js';
import { MemoryBlockFile } from './memory-file.js';
import { resolveFileName } from './store-names.js';

/**
 * A store of named files in memory: for tests, for browsers, for images built in a program. Every open of a name
 * sees the same bytes (a write through one handle is read through another), as with files; a handle's close never
 * drops the file. Names resolve as file names (`dir/base.qcow2` records `../b.qcow2`), without normalising `..`.
 */
export class MemoryStore implements BlockStore {
  readonly capabilities: StoreCapabilities = { write: true, lock: false, deallocate: true };
  private readonly files = new Map<string, MemoryBlockFile>();

  /** Stores `bytes` under `name` (kept, not copied), replacing what was there. */
  put(name: string, bytes: Uint8Array): void {
    this.files.set(name, new MemoryBlockFile(bytes, { name, deallocate: true }));
  }

  /** The current bytes of `name` (a view), or undefined when there is no such file. */
  get(name: string): Uint8Array | undefined {
    return this.files.get(name)?.contents();
  }

  delete(name: string): boolean {
    return this.files.delete(name);
  }

  async open(name: string, options: StoreOpenOptions = {}): Promise<BlockFile> {
    let file = this.files.get(name);
    if (file === undefined) {
      if (options.create !== true) throw new DiskError('E_NOT_FOUND', 'No such file or directory', { file: name });
      file = new MemoryBlockFile(new Uint8Array(0), { name, deallocate: true });
      this.files.set(name, file);
    }
    const writable = options.writable === true || options.create === true;
    if (writable && options.truncate === true) await file.truncate(0);
    return new MemoryHandle(file, writable);
  }

  resolve(base: string, name: string): string {
    return resolveFileName(base, name);
  }

  async identify(name: string): Promise<string> {
    return name;
  }

  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }
}

/** One open of a memory file: its own read-only flag and closed state over the shared bytes. */
class MemoryHandle implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private closed = false;

  constructor(
    private readonly file: MemoryBlockFile,
    writable: boolean,
  ) {
    this.name = file.name;
    this.capabilities = { writable, sparse: false, deallocate: writable };
  }

  async read(dst: Uint8Array, offset: number): Promise<number> {
    return this.open().read(dst, offset);
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    return this.writable().write(src, offset);
  }

  async flush(): Promise<void> {
    return this.open().flush();
  }

  async size(): Promise<number> {
    return this.open().size();
  }

  async truncate(size: number): Promise<void> {
    return this.writable().truncate(size);
  }

  async deallocate(offset: number, length: number): Promise<boolean> {
    return this.writable().deallocate(offset, length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): MemoryBlockFile {
    if (this.closed) throw new DiskError('E_IO', 'file is closed', { file: this.name });
    return this.file;
  }

  private writable(): MemoryBlockFile {
    const file = this.open();
    if (!this.capabilities.writable) throw new DiskError('E_READ_ONLY', 'file is read-only', { file: this.name });
    return file;
  }
}
