import { l1EntryOffset, writeL1Entry, L1_COPIED_HI } from '@q/format';
import { DiskError, hex, type BlockFile } from '@q/raw';

/**
 * An L1 table in memory: the active one (writable, `offset` is where it lives in the file) or a snapshot's
 * (read-only). Entries are read as two 32-bit halves; a change is written through to the file at once (one 8-byte
 * write; the caller syncs), because the L1 entry is the last step of every L2 table change.
 */
export class L1Table {
  private bytes: Uint8Array;
  private view: DataView;
  /** Where the table lives in the image file (0 for a table that is not written back). */
  offset: number;
  private readonly clusterSize: number;
  private readonly name: string;

  constructor(bytes: Uint8Array, offset: number, clusterSize: number, name: string) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.clusterSize = clusterSize;
    this.name = name;
  }

  get entries(): number {
    return this.bytes.length / 8;
  }

  /** The table as stored (for copying into a snapshot or a grown table). */
  get raw(): Uint8Array {
    return this.bytes;
  }

  /** The L2 table offset of entry `index` (0 = unallocated, also past the end of the table). */
  l2Offset(index: number): number {
    if (index >= this.entries) return 0;
    const at = index * 8;
    const offset = l1EntryOffset(this.view.getUint32(at), this.view.getUint32(at + 4));
    if (offset !== 0 && offset % this.clusterSize !== 0) {
      throw new DiskError('E_CORRUPT', `L2 table offset ${hex(offset)} (L1 entry ${index}) is not cluster aligned`, {
        file: this.name,
        offset,
      });
    }
    return offset;
  }

  /** Whether entry `index` says its L2 table has refcount 1 (may be written in place). */
  copied(index: number): boolean {
    return index < this.entries && (this.view.getUint32(index * 8) & L1_COPIED_HI) !== 0;
  }

  /** Sets entry `index` in memory and writes it to the file (not synced). */
  async set(index: number, l2Offset: number, copied: boolean, file: BlockFile): Promise<void> {
    const entry = new Uint8Array(8);
    writeL1Entry(new DataView(entry.buffer), 0, l2Offset, copied);
    if (this.offset === 0) throw new DiskError('E_READ_ONLY', 'this L1 table is not writable', { file: this.name });
    await file.write(entry, this.offset + index * 8);
    this.bytes.set(entry, index * 8);
  }

  /** Replaces the table (after it grew and moved). */
  replace(bytes: Uint8Array, offset: number): void {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }
}
