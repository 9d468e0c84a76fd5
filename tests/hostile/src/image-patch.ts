import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A small, independent byte editor for damaging qcow2 images in tests, written from the published format
 * description (big-endian fields; header layout, L1/L2 entries, snapshot table entries, header extensions).
 * It knows just enough to find the bytes a test wants to break; it validates nothing.
 */

/** Byte offsets of the header fields. */
export const H = {
  magic: 0,
  version: 4,
  backingFileOffset: 8,
  backingFileSize: 16,
  clusterBits: 20,
  size: 24,
  cryptMethod: 32,
  l1Size: 36,
  l1TableOffset: 40,
  refcountTableOffset: 48,
  refcountTableClusters: 56,
  nbSnapshots: 60,
  snapshotsOffset: 64,
  incompatibleFeatures: 72,
  compatibleFeatures: 80,
  autoclearFeatures: 88,
  refcountOrder: 96,
  headerLength: 100,
  compressionType: 104,
} as const;

export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_BACKING_FORMAT = 0xe2792aca;

const L2_COMPRESSED = 1n << 62n;
const L2_COPIED = 1n << 63n;
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;

export class ImageBytes {
  buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  static load(path: string): ImageBytes {
    return new ImageBytes(readFileSync(path));
  }

  save(path: string): void {
    writeFileSync(path, this.buf);
  }

  get length(): number {
    return this.buf.length;
  }

  u8(at: number): number {
    return this.buf.readUInt8(at);
  }
  u16(at: number): number {
    return this.buf.readUInt16BE(at);
  }
  u32(at: number): number {
    return this.buf.readUInt32BE(at);
  }
  u64(at: number): bigint {
    return this.buf.readBigUInt64BE(at);
  }
  /** A u64 known to be a safe integer (an offset or size in an undamaged image). */
  num(at: number): number {
    return Number(this.u64(at));
  }

  setU8(at: number, value: number): this {
    this.buf.writeUInt8(value, at);
    return this;
  }
  setU16(at: number, value: number): this {
    this.buf.writeUInt16BE(value, at);
    return this;
  }
  setU32(at: number, value: number): this {
    this.buf.writeUInt32BE(value >>> 0, at);
    return this;
  }
  setU64(at: number, value: bigint | number): this {
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, BigInt(value)), at);
    return this;
  }
  /** Overwrites bytes at `at` with `bytes`, growing the file when they run past its end. */
  put(at: number, bytes: Uint8Array): this {
    if (at + bytes.length > this.buf.length) {
      const grown = Buffer.alloc(at + bytes.length);
      this.buf.copy(grown);
      this.buf = grown;
    }
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).copy(this.buf, at);
    return this;
  }
  /** Keeps the first `length` bytes. */
  truncate(length: number): this {
    this.buf = Buffer.from(this.buf.subarray(0, length));
    return this;
  }

  get version(): number {
    return this.u32(H.version);
  }
  get clusterBits(): number {
    return this.u32(H.clusterBits);
  }
  get clusterSize(): number {
    return 2 ** this.clusterBits;
  }
  get virtualSize(): number {
    return this.num(H.size);
  }
  get l1TableOffset(): number {
    return this.num(H.l1TableOffset);
  }
  get l1Size(): number {
    return this.u32(H.l1Size);
  }
  get refcountTableOffset(): number {
    return this.num(H.refcountTableOffset);
  }
  get snapshotsOffset(): number {
    return this.num(H.snapshotsOffset);
  }
  get nbSnapshots(): number {
    return this.u32(H.nbSnapshots);
  }
  get headerLength(): number {
    return this.version >= 3 ? this.u32(H.headerLength) : 72;
  }
  get extendedL2(): boolean {
    return this.version >= 3 && (this.u64(H.incompatibleFeatures) & (1n << 4n)) !== 0n;
  }
  get l2EntryBytes(): number {
    return this.extendedL2 ? 16 : 8;
  }

  /** File position of L1 entry `index`. */
  l1EntryAt(index: number): number {
    return this.l1TableOffset + index * 8;
  }
  /** The L2 table offset L1 entry `index` holds (0: unallocated). */
  l2TableOffset(index: number): number {
    return Number(this.u64(this.l1EntryAt(index)) & OFFSET_MASK);
  }
  /** File position of the L2 entry mapping guest byte `guestOffset`; throws when its L2 table is unallocated. */
  l2EntryAt(guestOffset: number): number {
    const cluster = Math.floor(guestOffset / this.clusterSize);
    const perTable = this.clusterSize / this.l2EntryBytes;
    const table = this.l2TableOffset(Math.floor(cluster / perTable));
    if (table === 0) throw new Error(`test setup: no L2 table maps guest offset ${guestOffset}`);
    return table + (cluster % perTable) * this.l2EntryBytes;
  }
  /** The raw standard L2 entry (first u64) mapping `guestOffset`. */
  l2Entry(guestOffset: number): bigint {
    return this.u64(this.l2EntryAt(guestOffset));
  }
  /** The host cluster offset of an uncompressed allocated guest cluster. */
  dataOffset(guestOffset: number): number {
    const entry = this.l2Entry(guestOffset);
    if ((entry & L2_COMPRESSED) !== 0n) throw new Error('test setup: cluster is compressed');
    const offset = Number(entry & OFFSET_MASK);
    if (offset === 0) throw new Error(`test setup: guest offset ${guestOffset} is not allocated`);
    return offset;
  }
  /** Replaces the host offset of an uncompressed L2 entry, keeping its flags. */
  setDataOffset(guestOffset: number, hostOffset: number): this {
    const at = this.l2EntryAt(guestOffset);
    const entry = this.u64(at);
    return this.setU64(at, (entry & ~OFFSET_MASK) | (BigInt(hostOffset) & OFFSET_MASK));
  }
  /** Replaces the L2 table offset in L1 entry `index`, keeping COPIED. */
  setL2TableOffset(index: number, offset: number): this {
    const at = this.l1EntryAt(index);
    return this.setU64(at, (this.u64(at) & L2_COPIED) | BigInt(offset));
  }

  /** Compressed descriptor of the cluster mapping `guestOffset`: host byte offset and number of 512-byte sectors. */
  compressed(guestOffset: number): { hostOffset: number; sectors: number } {
    const entry = this.l2Entry(guestOffset);
    if ((entry & L2_COMPRESSED) === 0n) throw new Error('test setup: cluster is not compressed');
    const x = BigInt(62 - (this.clusterBits - 8));
    const descriptor = entry & ((1n << 62n) - 1n);
    return { hostOffset: Number(descriptor & ((1n << x) - 1n)), sectors: Number(descriptor >> x) + 1 };
  }
  /** Writes a compressed descriptor for the cluster mapping `guestOffset` (sectors: total 512-byte sectors, >= 1). */
  setCompressed(guestOffset: number, hostOffset: number, sectors: number): this {
    const x = BigInt(62 - (this.clusterBits - 8));
    const entry = L2_COMPRESSED | (BigInt(sectors - 1) << x) | BigInt(hostOffset);
    return this.setU64(this.l2EntryAt(guestOffset), entry);
  }

  /** Header extensions in cluster 0: position of each (its type field), type and length. */
  extensions(): Array<{ at: number; type: number; length: number }> {
    const found: Array<{ at: number; type: number; length: number }> = [];
    let at = this.headerLength;
    while (at + 8 <= this.clusterSize) {
      const type = this.u32(at);
      const length = this.u32(at + 4);
      if (type === 0) break;
      found.push({ at, type, length });
      at += 8 + Math.ceil(length / 8) * 8;
    }
    return found;
  }
  extension(type: number): { at: number; type: number; length: number } {
    const ext = this.extensions().find((e) => e.type === type);
    if (ext === undefined) throw new Error(`test setup: no header extension 0x${type.toString(16)}`);
    return ext;
  }

  /** Position of snapshot table entry `index` (walking the entries before it). */
  snapshotEntryAt(index: number): number {
    let at = this.snapshotsOffset;
    for (let i = 0; i < index; i++) {
      const end = at + 40 + this.u32(at + 36) + this.u16(at + 12) + this.u16(at + 14);
      at = Math.ceil(end / 8) * 8;
    }
    return at;
  }
}

/** Bytes of a raw-deflate stream (fixed Huffman) that inflates to about `copies * 258` zero bytes. */
export function deflateBomb(copies: number): Buffer {
  const out: number[] = [];
  let bitBuffer = 0;
  let bitCount = 0;
  const putBits = (value: number, count: number): void => {
    // LSB-first packing, as deflate does.
    for (let i = 0; i < count; i++) {
      bitBuffer |= ((value >>> i) & 1) << bitCount;
      bitCount++;
      if (bitCount === 8) {
        out.push(bitBuffer);
        bitBuffer = 0;
        bitCount = 0;
      }
    }
  };
  // Huffman codes are sent most-significant-bit first.
  const putCode = (code: number, length: number): void => {
    for (let i = length - 1; i >= 0; i--) putBits((code >>> i) & 1, 1);
  };
  putBits(1, 1); // BFINAL
  putBits(1, 2); // BTYPE = 01, fixed Huffman
  putCode(0x30, 8); // literal 0 (codes 0-143: 0x30 + value, 8 bits)
  for (let i = 0; i < copies; i++) {
    putCode(0xc5, 8); // length symbol 285 = 258 bytes (codes 280-287: 0xc0 + (symbol - 280), 8 bits)
    putCode(0, 5); // distance symbol 0 = distance 1
  }
  putCode(0, 7); // end of block (symbol 256: 7 zero bits)
  if (bitCount > 0) out.push(bitBuffer);
  return Buffer.from(out);
}
