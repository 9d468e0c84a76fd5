import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A small, independent byte editor for damaging qcow2 images made by qemu-img, written from the published format
 * description (big-endian fields; header at 0; L1/L2 entries with the offset in bits 9-55 and COPIED in bit 63;
 * refcount table entries naming refcount blocks of 2^refcount_order-bit entries, packed LSB first below 8 bits).
 * It finds the bytes a test wants to break; it validates nothing.
 */
export const COPIED = 1n << 63n;
export const COMPRESSED = 1n << 62n;
export const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;

export class ImageEditor {
  buf: Buffer;

  constructor(readonly path: string) {
    this.buf = readFileSync(path);
  }

  save(): void {
    writeFileSync(this.path, this.buf);
  }

  u32(at: number): number {
    return this.buf.readUInt32BE(at);
  }
  u64(at: number): bigint {
    return this.buf.readBigUInt64BE(at);
  }
  setU32(at: number, value: number): void {
    this.buf.writeUInt32BE(value >>> 0, at);
  }
  setU64(at: number, value: bigint): void {
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, value), at);
  }

  get version(): number {
    return this.u32(4);
  }
  get clusterBits(): number {
    return this.u32(20);
  }
  get clusterSize(): number {
    return 2 ** this.clusterBits;
  }
  get refcountOrder(): number {
    return this.version >= 3 ? this.u32(96) : 4;
  }
  get extendedL2(): boolean {
    return this.version >= 3 && (this.u64(72) & 16n) !== 0n;
  }
  get l2EntryBytes(): number {
    return this.extendedL2 ? 16 : 8;
  }
  get l1Offset(): number {
    return Number(this.u64(40));
  }
  get l1Size(): number {
    return this.u32(36);
  }
  get refcountTableOffset(): number {
    return Number(this.u64(48));
  }
  /** Clusters in the file (a last, partial cluster counts). */
  get clusters(): number {
    return Math.ceil(this.buf.length / this.clusterSize);
  }

  l1EntryAt(index: number): number {
    return this.l1Offset + index * 8;
  }
  l1Entry(index: number): bigint {
    return this.u64(this.l1EntryAt(index));
  }
  l2EntryAt(l1Index: number, index: number): number {
    return Number(this.l1Entry(l1Index) & OFFSET_MASK) + index * this.l2EntryBytes;
  }
  l2Entry(l1Index: number, index: number): bigint {
    return this.u64(this.l2EntryAt(l1Index, index));
  }

  /** The first active L2 entry that maps a standard (not compressed) host cluster: [l1 index, l2 index]. */
  firstDataEntry(): [number, number] | undefined {
    return this.findEntry((entry) => (entry & COMPRESSED) === 0n && (entry & OFFSET_MASK) !== 0n);
  }
  firstCompressedEntry(): [number, number] | undefined {
    return this.findEntry((entry) => (entry & COMPRESSED) !== 0n);
  }
  firstUnallocatedEntry(): [number, number] | undefined {
    return this.findEntry((entry) => entry === 0n);
  }

  private findEntry(match: (entry: bigint) => boolean): [number, number] | undefined {
    for (let i = 0; i < this.l1Size; i++) {
      if ((this.l1Entry(i) & OFFSET_MASK) === 0n) continue;
      for (let j = 0; j < this.clusterSize / this.l2EntryBytes; j++) if (match(this.l2Entry(i, j))) return [i, j];
    }
    return undefined;
  }

  /** The host cluster holding the data of a compressed entry. */
  compressedCluster(entry: bigint): number {
    const offsetBits = BigInt(62 - (this.clusterBits - 8));
    return Number((entry & ((1n << offsetBits) - 1n)) / BigInt(this.clusterSize));
  }

  private refcountEntry(cluster: number): { at: number; shift: number } {
    const bits = 2 ** this.refcountOrder;
    const perBlock = (this.clusterSize * 8) / bits;
    const block = Number(this.u64(this.refcountTableOffset + Math.floor(cluster / perBlock) * 8) & ~0x1ffn);
    if (block === 0) throw new Error(`no refcount block for cluster ${cluster}`);
    const bit = (cluster % perBlock) * bits;
    return { at: block + Math.floor(bit / 8), shift: bit % 8 };
  }

  refcount(cluster: number): bigint {
    const bits = 2 ** this.refcountOrder;
    const { at, shift } = this.refcountEntry(cluster);
    if (bits < 8) return BigInt((this.buf[at]! >> shift) & ((1 << bits) - 1));
    return BigInt('0x' + (this.buf.subarray(at, at + bits / 8).toString('hex') || '0'));
  }

  setRefcount(cluster: number, value: bigint): void {
    const bits = 2 ** this.refcountOrder;
    const { at, shift } = this.refcountEntry(cluster);
    if (bits < 8) {
      const mask = ((1 << bits) - 1) << shift;
      this.buf[at] = (this.buf[at]! & ~mask) | (Number(value) << shift);
      return;
    }
    const hex = value.toString(16).padStart(bits / 4, '0');
    Buffer.from(hex, 'hex').copy(this.buf, at);
  }

  /** Grows the file by one cluster with refcount 1 (a leak). Returns the cluster. */
  appendLeakedCluster(): number {
    const cluster = this.clusters;
    this.buf = Buffer.concat([this.buf, Buffer.alloc((cluster + 1) * this.clusterSize - this.buf.length)]);
    this.setRefcount(cluster, 1n);
    return cluster;
  }
}
