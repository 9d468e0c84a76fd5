/**
 * What the guest may read back after a crash, sector by sector. Workloads write single-byte patterns on 512-byte
 * boundaries, so a sector's content is described by the set of byte values it may hold: one value where the last
 * acknowledged-and-flushed write decides it, several where later (unflushed) writes, zero writes or discards
 * (advisory: old data or zeros) may or may not have reached the disk.
 */
export const SECTOR = 512;

export type GuestOp =
  | { op: 'write'; offset: number; length: number; pattern: number }
  /**
   * Whole clusters written compressed (Qcow2Image.writeCompressed), one stream per cluster; `rawBytes` of each are
   * stored uncompressed in the stream, to choose its size (compressed-streams.ts). Reads back as a write does.
   */
  | { op: 'compressed'; offset: number; length: number; pattern: number; rawBytes?: number }
  | { op: 'zero'; offset: number; length: number; unmap?: boolean }
  | { op: 'discard'; offset: number; length: number }
  | { op: 'flush' }
  /** Growing with `preallocation` allocates the new clusters (they read as zeros). */
  | { op: 'resize'; size: number; preallocation?: 'metadata' | 'falloc' | 'full' }
  /** An internal snapshot operation (each flushes what came before it and is durable when it returns). */
  | { op: 'snapshot'; action: 'create' | 'apply' | 'delete'; name: string }
  /** Closes the image (flush, and a clean close clears the dirty bit of lazy-refcount images). */
  | { op: 'close' }
  /** Unmaps every cluster (what commit leaves in the overlay); flushes first, durable when it returns. */
  | { op: 'empty' }
  /** Names a backing file (`rebase`'s header step; the tests' backing files read as zeros) or none; durable when it returns. */
  | { op: 'backing'; name?: string }
  /** qemu-img amend -o compat=0.10: every zero cluster made explicit, then the header says v2; durable when it returns. */
  | { op: 'downgrade' };

export function describeOp(op: GuestOp): string {
  switch (op.op) {
    case 'write':
      return `write -P 0x${op.pattern.toString(16)} ${op.offset} ${op.length}`;
    case 'compressed':
      return `write -c -P 0x${op.pattern.toString(16)} ${op.offset} ${op.length}${op.rawBytes === undefined ? '' : ` (streams of ~${op.rawBytes} bytes)`}`;
    case 'zero':
      return `write -z${op.unmap === true ? ' -u' : ''} ${op.offset} ${op.length}`;
    case 'discard':
      return `discard ${op.offset} ${op.length}`;
    case 'flush':
      return 'flush';
    case 'resize':
      return op.preallocation === undefined ? `resize ${op.size}` : `resize ${op.size} (preallocation=${op.preallocation})`;
    case 'close':
      return 'close';
    case 'snapshot':
      return `snapshot -${op.action[0]} ${op.name}`;
    case 'empty':
      return 'make empty';
    case 'backing':
      return `rebase -u -b '${op.name ?? ''}'`;
    case 'downgrade':
      return 'amend -o compat=0.10';
  }
}

/** Whether an op makes everything acknowledged before it durable once it completes. */
export function isBarrier(op: GuestOp): boolean {
  return op.op === 'flush' || op.op === 'close' || op.op === 'snapshot' || op.op === 'empty' || op.op === 'backing' || op.op === 'downgrade';
}

/** Allowed byte values per sector; sectors absent from the map hold `fallback` (zeros on a fresh disk). */
export class SectorModel {
  readonly sectors: Map<number, number[]>;
  size: number;

  constructor(size: number, sectors: Map<number, number[]> = new Map()) {
    this.size = size;
    this.sectors = sectors;
  }

  clone(): SectorModel {
    const copy = new Map<number, number[]>();
    for (const [sector, values] of this.sectors) copy.set(sector, [...values]);
    return new SectorModel(this.size, copy);
  }

  allowed(sector: number): readonly number[] {
    return this.sectors.get(sector) ?? ZERO;
  }

  /** Applies an op as the definite new state (it was acknowledged before a flush that completed). */
  apply(op: GuestOp): void {
    switch (op.op) {
      case 'write':
      case 'compressed':
        this.forSectors(op.offset, op.length, (sector) => this.sectors.set(sector, [op.pattern]));
        return;
      case 'zero':
        this.forSectors(op.offset, op.length, (sector) => this.sectors.set(sector, [0]));
        return;
      case 'discard':
        this.forSectors(op.offset, op.length, (sector) => this.addValue(sector, 0));
        return;
      case 'resize':
        // A shrink drops what lies past the new end: growing again later shows zeros there.
        if (op.size < this.size) for (const sector of [...this.sectors.keys()]) if (sector >= op.size / SECTOR) this.sectors.delete(sector);
        this.size = op.size;
        return;
      case 'empty':
        this.sectors.clear();
        return;
      default:
        return;
    }
  }

  /** Widens the state with an op that may or may not have reached the disk. */
  widen(op: GuestOp): void {
    switch (op.op) {
      case 'write':
      case 'compressed':
        this.forSectors(op.offset, op.length, (sector) => this.addValue(sector, op.pattern));
        return;
      case 'zero':
      case 'discard':
        this.forSectors(op.offset, op.length, (sector) => this.addValue(sector, 0));
        return;
      case 'empty':
        for (const sector of this.sectors.keys()) this.addValue(sector, 0);
        return;
      case 'resize':
        // A shrink in flight may have cleared the clusters past the new end before the header took the size.
        for (const sector of this.sectors.keys()) if (sector >= op.size / SECTOR) this.addValue(sector, 0);
        return;
      default:
        return;
    }
  }

  /** Widens the state to also allow everything `other` allows (a state switch that may or may not have landed). */
  widenTo(other: SectorModel): void {
    for (const sector of new Set([...this.sectors.keys(), ...other.sectors.keys()])) {
      for (const value of other.allowed(sector)) this.addValue(sector, value);
      for (const value of this.allowed(sector)) this.addValue(sector, value);
    }
  }

  /** Sectors with any allowed value other than zero, sorted (what the image must have kept somewhere). */
  sortedSectors(): number[] {
    return [...this.sectors.keys()].sort((a, b) => a - b);
  }

  private addValue(sector: number, value: number): void {
    const values = this.sectors.get(sector) ?? [0];
    if (!values.includes(value)) values.push(value);
    this.sectors.set(sector, values);
  }

  private forSectors(offset: number, length: number, visit: (sector: number) => void): void {
    if (offset % SECTOR !== 0 || length % SECTOR !== 0) throw new Error(`workload ops must be sector aligned: ${offset}+${length}`);
    for (let sector = offset / SECTOR; sector < (offset + length) / SECTOR; sector++) visit(sector);
  }
}

const ZERO: readonly number[] = [0];

/**
 * Checks `bytes` (guest bytes from `offset`, sector aligned) against the model; returns a description of the first
 * mismatch, or undefined.
 */
export function firstMismatch(model: SectorModel, bytes: Uint8Array, offset: number): string | undefined {
  for (let at = 0; at < bytes.length; at += SECTOR) {
    const sector = (offset + at) / SECTOR;
    const allowed = model.allowed(sector);
    const end = Math.min(bytes.length, at + SECTOR);
    if (allowed.length === 1) {
      const value = allowed[0]!;
      for (let i = at; i < end; i++) {
        if (bytes[i] !== value) return mismatch(offset + i, bytes[i]!, allowed);
      }
    } else {
      for (let i = at; i < end; i++) {
        if (!allowed.includes(bytes[i]!)) return mismatch(offset + i, bytes[i]!, allowed);
      }
    }
  }
  return undefined;
}

function mismatch(offset: number, found: number, allowed: readonly number[]): string {
  const list = allowed.map((v) => '0x' + v.toString(16)).join(' or ');
  return `guest byte at offset ${offset} (sector ${Math.floor(offset / SECTOR)}) is 0x${found.toString(16)}, expected ${list}`;
}
