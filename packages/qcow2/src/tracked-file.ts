import type { BlockFile, BlockFileCapabilities } from '@q/raw';

/**
 * A BlockFile decorator that knows how far the file reaches, counting writes still in flight, so the write path
 * can extend the file to cover a new cluster (one truncate) without ever shrinking it under a write that is
 * already on its way. It also remembers whether anything was written since the last sync.
 */
export class TrackedFile implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private readonly inner: BlockFile;
  /** Bytes the file covers once every issued write has landed. */
  end: number;
  /** Something was written since the last completed flush began. */
  unsynced = false;
  private writesIssued = 0;

  private constructor(inner: BlockFile, end: number) {
    this.inner = inner;
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.end = end;
  }

  static async wrap(inner: BlockFile): Promise<TrackedFile> {
    return new TrackedFile(inner, await inner.size());
  }

  read(dst: Uint8Array, offset: number): Promise<number> {
    return this.inner.read(dst, offset);
  }

  write(src: Uint8Array, offset: number): Promise<void> {
    this.end = Math.max(this.end, offset + src.length);
    this.unsynced = true;
    this.writesIssued++;
    return this.inner.write(src, offset);
  }

  async flush(): Promise<void> {
    const seen = this.writesIssued;
    await this.inner.flush();
    if (this.writesIssued === seen) this.unsynced = false;
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  /**
   * Grows the file to at least `length` bytes. Callers serialise growth (under the metadata lock) and await it
   * before any write past the old end is issued, so a truncate never lands after a write beyond it.
   */
  async extendTo(length: number): Promise<void> {
    if (length <= this.end) return;
    this.end = length;
    await this.inner.truncate(length);
  }

  async truncate(size: number): Promise<void> {
    this.end = size;
    await this.inner.truncate(size);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
