import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRefcount, setRefcount } from '@q/format';
import { MemoryBlockFile } from '@q/raw';

/**
 * Test-only: committed fixtures in memory, and a small independent byte editor that damages them in known ways
 * (written from the format description: big-endian fields, header offsets, L1/L2 entry layout).
 */
export const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');

export function fixtureFile(name: string, writable = true): MemoryBlockFile {
  return new MemoryBlockFile(new Uint8Array(readFileSync(join(FIXTURES, name))), { name, writable });
}

export class TestImage {
  constructor(readonly file: MemoryBlockFile) {}

  get bytes(): Uint8Array {
    return this.file.contents();
  }
  private get view(): DataView {
    const b = this.bytes;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u32(at: number): number {
    return this.view.getUint32(at);
  }
  u64(at: number): bigint {
    return this.view.getBigUint64(at);
  }
  setU64(at: number, value: bigint): void {
    this.view.setBigUint64(at, value);
  }
  get clusterBits(): number {
    return this.u32(20);
  }
  get clusterSize(): number {
    return 2 ** this.clusterBits;
  }
  get refcountOrder(): number {
    return this.u32(4) >= 3 ? this.u32(96) : 4;
  }
  get extendedL2(): boolean {
    return this.u32(4) >= 3 && (this.u64(72) & 16n) !== 0n;
  }
  get l1Offset(): number {
    return Number(this.u64(40));
  }
  l1Entry(index: number): bigint {
    return this.u64(this.l1Offset + index * 8);
  }
  l2EntryAt(l1Index: number, index: number): number {
    return Number(this.l1Entry(l1Index) & 0x00ff_ffff_ffff_fe00n) + index * (this.extendedL2 ? 16 : 8);
  }
  /** The host cluster of a standard L2 entry. */
  dataCluster(l1Index: number, index: number): number {
    return Number(this.u64(this.l2EntryAt(l1Index, index)) & 0x00ff_ffff_ffff_fe00n) / this.clusterSize;
  }
  get clusters(): number {
    return Math.ceil(this.bytes.length / this.clusterSize);
  }
  private refcountBlock(cluster: number): { block: Uint8Array; index: number } {
    const perBlock = (this.clusterSize * 8) / 2 ** this.refcountOrder;
    const tableOffset = Number(this.u64(48));
    const blockOffset = Number(this.u64(tableOffset + Math.floor(cluster / perBlock) * 8) & ~0x1ffn);
    return { block: this.bytes.subarray(blockOffset, blockOffset + this.clusterSize), index: cluster % perBlock };
  }
  refcount(cluster: number): number {
    const { block, index } = this.refcountBlock(cluster);
    return getRefcount(block, index, this.refcountOrder);
  }
  setRefcount(cluster: number, value: number): void {
    const { block, index } = this.refcountBlock(cluster);
    setRefcount(block, index, this.refcountOrder, value);
  }
  /** Grows the file by one cluster and gives it refcount 1: a leaked cluster. Returns its index. */
  async leakAppendedCluster(): Promise<number> {
    const cluster = this.clusters;
    await this.file.truncate((cluster + 1) * this.clusterSize);
    this.setRefcount(cluster, 1);
    return cluster;
  }
}
