/**
 * The host clusters that hold metadata (header, L1 and refcount tables, refcount blocks, L2 tables, snapshot
 * table...), by cluster index, with what each holds. Pointers followed on reads and writes are checked against it:
 * a data cluster or an L2 table landing on metadata means the image is corrupt, and a write there would destroy
 * it (QEMU's overlap check). The engine keeps it current as tables are allocated, moved and freed.
 */
export class MetadataRegions {
  private readonly clusterSize: number;
  private readonly clusters = new Map<number, string>();

  constructor(clusterSize: number) {
    this.clusterSize = clusterSize;
  }

  /** Records `[offset, offset + bytes)` (rounded out to clusters) as holding `what`. */
  add(offset: number, bytes: number, what: string): void {
    for (let c = Math.floor(offset / this.clusterSize); c < Math.ceil((offset + bytes) / this.clusterSize); c++) this.clusters.set(c, what);
  }

  /** Forgets `[offset, offset + bytes)` (it was freed). */
  remove(offset: number, bytes: number): void {
    for (let c = Math.floor(offset / this.clusterSize); c < Math.ceil((offset + bytes) / this.clusterSize); c++) this.clusters.delete(c);
  }

  /**
   * What metadata `[offset, offset + bytes)` overlaps, or undefined when it is clear. `expected` names the kind
   * of metadata the range is meant to be (an L2 table being loaded is itself an active L2 table).
   */
  overlap(offset: number, bytes: number, expected?: string): string | undefined {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.ceil((offset + bytes) / this.clusterSize);
    // A long run (a mapper joining thousands of data clusters) costs a lookup per cluster; scanning the few
    // metadata clusters instead is cheaper then, and finds the same answer: the lowest one that overlaps.
    if (last - first > this.clusters.size) return this.lowestOverlap(first, last, expected);
    for (let c = first; c < last; c++) {
      const what = this.clusters.get(c);
      if (what !== undefined && what !== expected) return what;
    }
    return undefined;
  }

  private lowestOverlap(first: number, last: number, expected: string | undefined): string | undefined {
    let lowest = last;
    let found: string | undefined;
    // forEach, not for-of over entries: no [key, value] array per metadata cluster on every call.
    this.clusters.forEach((what, c) => {
      if (c >= first && c < lowest && what !== expected) {
        lowest = c;
        found = what;
      }
    });
    return found;
  }

  get size(): number {
    return this.clusters.size;
  }
}
