import { encodeHeader, encodeHeaderFields, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, type QcowHeader } from '@q/format';
import type { BlockFile } from '@q/raw';

/**
 * The header of a writable image and the few changes the write path makes to it. Every change is one write of
 * the header's fixed fields (the extensions after them are never touched) followed by a sync: the header is
 * where a table switch or a state bit becomes true, so it must be durable before anything relies on it.
 */
export class HeaderState {
  readonly header: QcowHeader;
  private readonly file: BlockFile;

  constructor(header: QcowHeader, file: BlockFile) {
    this.header = header;
    this.file = file;
  }

  get dirty(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
  }

  get corrupt(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n;
  }

  async setDirty(dirty: boolean): Promise<void> {
    const bits = this.header.incompatibleFeatures;
    this.header.incompatibleFeatures = dirty ? bits | INCOMPAT_DIRTY : bits & ~INCOMPAT_DIRTY;
    await this.write();
  }

  async setCorrupt(): Promise<void> {
    this.header.incompatibleFeatures |= INCOMPAT_CORRUPT;
    await this.write();
  }

  /** Clears the autoclear bits in `mask` (features whose data this writer does not keep up to date). */
  async clearAutoclear(mask: bigint): Promise<void> {
    this.header.autoclearFeatures &= ~mask;
    await this.write();
  }

  /** Points the header at a new refcount table: offset and size are adjacent fields, so one 12-byte write. */
  async switchRefcountTable(offset: number, clusters: number): Promise<void> {
    const switched = { ...this.header, refcountTableOffset: offset, refcountTableClusters: clusters };
    const patch = encodeHeaderFields(switched, ['refcountTableOffset', 'refcountTableClusters']);
    await this.file.write(patch.bytes, patch.offset);
    await this.file.flush();
    this.header.refcountTableOffset = offset;
    this.header.refcountTableClusters = clusters;
  }

  /** Points the header at a new active L1 table and virtual size (resize): one write of the fixed fields. */
  async switchL1(offset: number, entries: number, size: number): Promise<void> {
    this.header.l1TableOffset = offset;
    this.header.l1Size = entries;
    this.header.size = size;
    await this.write();
  }

  /** Rewrites the fixed header fields and syncs. */
  async write(): Promise<void> {
    await this.file.write(encodeHeader(this.header), 0);
    await this.file.flush();
  }
}
