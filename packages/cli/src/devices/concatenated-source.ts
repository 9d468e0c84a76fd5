import { chainStatus, type ChainExtent } from '@q/backing';
import { checkRange, checkWritable, type BlockDevice, type BlockStatus } from '@q/raw';

/**
 * Several images end to end, as `qemu-img convert A B C OUT` reads them: the first's bytes, then the second's from
 * where the first ends (its size, rounded to whole sectors as every device's is), and so on. Read-only. It has no
 * backing device of its own: each part's block status is its whole chain's (what any layer stores is data here,
 * what no layer allocates is unallocated), so a copy sees through every part's backing files, as a conversion
 * without `-B` must.
 */
export class ConcatenatedSource implements BlockDevice {
  readonly backing: BlockDevice | undefined = undefined;
  readonly readOnly = true;
  readonly size: number;
  /** Where each part starts in the whole. */
  private readonly starts: number[];

  constructor(private readonly parts: readonly BlockDevice[]) {
    if (parts.length === 0) throw new RangeError('a concatenation needs at least one image');
    this.starts = [];
    let size = 0;
    for (const part of parts) {
      this.starts.push(size);
      size += part.size;
    }
    this.size = size;
  }

  get name(): string {
    return this.parts[0]!.name;
  }

  get format(): string {
    return this.parts[0]!.format;
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    const reads: Promise<void>[] = [];
    this.eachPart(offset, dst.length, (part, at, length, into) => reads.push(part.read(dst.subarray(into, into + length), at)));
    await Promise.all(reads);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return [];
    const asked: { shift: number; status: Promise<ChainExtent[]> }[] = [];
    this.eachPart(offset, end - offset, (part, at, partLength, _into, start) => asked.push({ shift: start, status: chainStatus(part, at, partLength) }));
    const out: BlockStatus[] = [];
    for (const { shift, status } of asked) {
      for (const extent of await status) out.push(flattened(extent, shift));
    }
    return out;
  }

  async write(): Promise<void> {
    checkWritable(this);
  }

  async writeZeroes(): Promise<void> {
    checkWritable(this);
  }

  async discard(): Promise<void> {
    checkWritable(this);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    const closed = await Promise.allSettled(this.parts.map((part) => part.close()));
    const failed = closed.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Calls `visit` for each part under `[offset, offset + length)`: the part, where in it, how much, where in the
   * range, and where the part starts in the whole.
   */
  private eachPart(offset: number, length: number, visit: (part: BlockDevice, at: number, length: number, into: number, start: number) => void): void {
    const end = offset + length;
    for (let i = 0; i < this.parts.length; i++) {
      const start = this.starts[i]!;
      const part = this.parts[i]!;
      const from = Math.max(offset, start);
      const to = Math.min(end, start + part.size);
      if (to > from) visit(part, from - start, to - from, from - offset, start);
    }
  }
}

/** One layer's view of a chain extent, moved by `shift`: stored somewhere in the chain is data here. */
function flattened(extent: ChainExtent, shift: number): BlockStatus {
  const kind = extent.data ? 'data' : extent.present ? 'zero' : 'unallocated';
  return {
    offset: extent.offset + shift,
    length: extent.length,
    kind,
    ...(extent.hostOffset === undefined ? {} : { hostOffset: extent.hostOffset, hostFile: extent.hostFile }),
    ...(extent.compressed ? { compressed: true } : {}),
    ...(extent.hole === true ? { hole: true } : {}),
  };
}
