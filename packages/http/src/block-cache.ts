/**
 * The blocks of one file most recently used, within a fixed byte budget: the header, L1 and L2 tables and
 * refcount blocks an engine reads again and again stay here instead of going to the network each time. Eviction
 * is least recently used first (a Map keeps insertion order, so a hit re-inserts). A budget of 0 keeps nothing.
 */
export class BlockCache {
  private readonly blocks = new Map<number, Uint8Array>();
  private held = 0;

  constructor(private readonly budget: number) {}

  /** The block at `index`, now the most recently used; undefined when not held. */
  get(index: number): Uint8Array | undefined {
    const block = this.blocks.get(index);
    if (block !== undefined) {
      this.blocks.delete(index);
      this.blocks.set(index, block);
    }
    return block;
  }

  /** Keeps `block` (not copied: the caller hands it over), evicting the oldest until the budget holds. */
  set(index: number, block: Uint8Array): void {
    if (block.length > this.budget) return;
    const old = this.blocks.get(index);
    if (old !== undefined) {
      this.blocks.delete(index);
      this.held -= old.length;
    }
    this.blocks.set(index, block);
    this.held += block.length;
    for (const [oldest, evicted] of this.blocks) {
      if (this.held <= this.budget) break;
      this.blocks.delete(oldest);
      this.held -= evicted.length;
    }
  }

  /** Bytes held now (never above the budget). */
  get bytes(): number {
    return this.held;
  }

  get count(): number {
    return this.blocks.size;
  }

  clear(): void {
    this.blocks.clear();
    this.held = 0;
  }
}
