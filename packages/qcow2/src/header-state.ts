import {
  encodeHeader,
  encodeHeaderCluster,
  encodeHeaderFields,
  encodeString,
  EXT_BACKING_FORMAT,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  type HeaderExtension,
  type QcowHeader,
} from '@q/format';
import type { BlockFile } from '@q/raw';

/**
 * The header of a writable image and the few changes the write path makes to it. Every change is one write of
 * the header's fixed fields (the extensions after them are never touched) followed by a sync: the header is
 * where a table switch or a state bit becomes true, so it must be durable before anything relies on it.
 */
export class HeaderState {
  readonly header: QcowHeader;
  private readonly file: BlockFile;
  /** The extensions of cluster 0 in file order (unknown ones included) and the backing name, for rewrites. */
  private cluster: { extensions: HeaderExtension[]; backingFileName: string | undefined; clusterSize: number };

  constructor(header: QcowHeader, file: BlockFile, cluster: HeaderState['cluster']) {
    this.header = header;
    this.file = file;
    this.cluster = cluster;
  }

  get extensions(): readonly HeaderExtension[] {
    return this.cluster.extensions;
  }

  get backingFileName(): string | undefined {
    return this.cluster.backingFileName;
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

  /**
   * Rewrites cluster 0 whole (fixed fields, extensions, backing name) in one write, then syncs: how extensions
   * and the backing name change (rebase, amend). The layout is checked to fit before anything is written.
   */
  async rewriteCluster(change: { header?: Partial<QcowHeader>; extensions?: HeaderExtension[]; backingFileName?: string | null }): Promise<void> {
    const extensions = change.extensions ?? this.cluster.extensions;
    const backingFileName = change.backingFileName === null ? undefined : (change.backingFileName ?? this.cluster.backingFileName);
    const encoded = encodeHeaderCluster({ header: { ...this.header, ...change.header }, extensions, backingFileName }, this.cluster.clusterSize);
    await this.file.write(encoded.bytes, 0);
    await this.file.flush();
    Object.assign(this.header, encoded.header);
    this.cluster = { ...this.cluster, extensions, backingFileName };
  }

  /**
   * Names a new backing file and its format (none: the image stands alone), keeping every other extension. The
   * format extension goes first, where QEMU and `qcow create` put it.
   */
  async setBackingFile(name: string | undefined, format: string | undefined): Promise<void> {
    const others = this.cluster.extensions.filter((extension) => extension.type !== EXT_BACKING_FORMAT);
    const extensions = name !== undefined && format !== undefined ? [{ type: EXT_BACKING_FORMAT, data: encodeString(format) }, ...others] : others;
    await this.rewriteCluster({ extensions, backingFileName: name ?? null });
  }

  /** Rewrites the fixed header fields and syncs. */
  async write(): Promise<void> {
    await this.file.write(encodeHeader(this.header), 0);
    await this.file.flush();
  }
}
