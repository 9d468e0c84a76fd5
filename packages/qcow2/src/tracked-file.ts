import type { BlockFile, BlockFileCapabilities, FileRun } from '@q/raw';

/**
 * A BlockFile decorator that knows how far the file reaches, counting writes still in flight, so the write path
 * can extend the file to cover a new cluster without ever shrinking it under a write that is already on its way.
 * Extensions reserve some room ahead (one truncate per megabyte, not one per cluster: a truncate is a round trip
 * through the I/O threads under the metadata lock); close trims the file back to what is used, so it ends where
 * QEMU's would, or earlier when the clusters at the end are free (`trimTo`). It also remembers whether anything
 * was written since the last sync.
 */
export class TrackedFile implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private readonly inner: BlockFile;
  /** Bytes the image uses once every issued write has landed (past it the file holds only reserved zeros). */
  end: number;
  /** Bytes the file really covers (`end` plus reserved room). */
  private physical: number;
  /** Something was written since the last completed flush began. */
  unsynced = false;
  private writesIssued = 0;
  /** The wrapped file's SEEK_DATA view and allocated size, when it has them. */
  readonly runAt?: (offset: number, length: number) => Promise<FileRun>;
  readonly allocatedSize?: () => Promise<number>;

  private constructor(inner: BlockFile, end: number) {
    this.inner = inner;
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.end = end;
    this.physical = end;
    if (inner.runAt !== undefined) this.runAt = (offset, length) => inner.runAt!(offset, length);
    if (inner.allocatedSize !== undefined) this.allocatedSize = () => inner.allocatedSize!();
  }

  static async wrap(inner: BlockFile): Promise<TrackedFile> {
    return new TrackedFile(inner, await inner.size());
  }

  read(dst: Uint8Array, offset: number): Promise<number> {
    return this.inner.read(dst, offset);
  }

  write(src: Uint8Array, offset: number): Promise<void> {
    this.end = Math.max(this.end, offset + src.length);
    this.physical = Math.max(this.physical, this.end);
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
  async extendTo(length: number, reserve = 0): Promise<void> {
    this.end = Math.max(this.end, length);
    if (length <= this.physical) return;
    this.physical = length + reserve;
    // The new length is durable only after a sync, like a write: tables naming clusters past the old end wait for it.
    this.unsynced = true;
    this.writesIssued++;
    await this.inner.truncate(this.physical);
  }

  deallocate(offset: number, length: number): Promise<boolean> {
    return this.inner.deallocate === undefined ? Promise.resolve(false) : this.inner.deallocate(offset, length);
  }

  /**
   * Lowers the length close cuts the file to (never raises it): for free clusters at the end, which nothing
   * references once the refcounts saying so are durable. Only when no write is still to come.
   */
  trimTo(length: number): void {
    this.end = Math.min(this.end, length);
  }

  async truncate(size: number): Promise<void> {
    this.end = size;
    this.physical = size;
    await this.inner.truncate(size);
  }

  /** Trims reserved room (every write has landed by now), then closes the file. */
  async close(): Promise<void> {
    try {
      if (this.physical > this.end) await this.inner.truncate(this.end);
    } finally {
      await this.inner.close();
    }
  }
}
