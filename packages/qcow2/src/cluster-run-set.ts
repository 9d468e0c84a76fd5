/** Clusters per page: a page is 4 KiB of bits, so a set costs memory only where clusters were added. */
const PAGE_CLUSTERS = 32768;
const PAGE_WORDS = PAGE_CLUSTERS / 32;

interface Page {
  bits: Uint32Array;
  count: number;
}

/**
 * A set of host cluster indexes that hands them back as runs of neighbours: a sparse bitmap of 4 KiB pages. Adding
 * and removing a cluster cost O(1) however the clusters arrive (a trim frees them in guest order, which is rarely
 * host order), and memory follows the spread of the clusters, not their number: a whole 2 GiB of 64 KiB clusters
 * is one page. Cluster indexes may exceed 2^32 (small clusters, large files), so no 32-bit shifts on them.
 */
export class ClusterRunSet {
  private readonly pages = new Map<number, Page>();
  private total = 0;

  /** How many clusters the set holds. */
  get size(): number {
    return this.total;
  }

  add(cluster: number): void {
    const key = Math.floor(cluster / PAGE_CLUSTERS);
    let page = this.pages.get(key);
    if (page === undefined) {
      page = { bits: new Uint32Array(PAGE_WORDS), count: 0 };
      this.pages.set(key, page);
    }
    const bit = cluster - key * PAGE_CLUSTERS;
    const mask = 1 << (bit & 31);
    const word = page.bits[bit >>> 5]!;
    if ((word & mask) !== 0) return;
    page.bits[bit >>> 5] = word | mask;
    page.count++;
    this.total++;
  }

  delete(cluster: number): void {
    const key = Math.floor(cluster / PAGE_CLUSTERS);
    const page = this.pages.get(key);
    if (page === undefined) return;
    const bit = cluster - key * PAGE_CLUSTERS;
    const mask = 1 << (bit & 31);
    const word = page.bits[bit >>> 5]!;
    if ((word & mask) === 0) return;
    page.bits[bit >>> 5] = word & ~mask;
    this.total--;
    if (--page.count === 0) this.pages.delete(key);
  }

  has(cluster: number): boolean {
    const key = Math.floor(cluster / PAGE_CLUSTERS);
    const page = this.pages.get(key);
    if (page === undefined) return false;
    const bit = cluster - key * PAGE_CLUSTERS;
    return (page.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  clear(): void {
    this.pages.clear();
    this.total = 0;
  }

  /** The clusters as runs `[first, count]` of consecutive indexes, ascending; runs continue across pages. */
  runs(): Array<[first: number, count: number]> {
    const runs: Array<[number, number]> = [];
    let start = -1;
    let next = -1;
    const close = (): void => {
      if (start >= 0) runs.push([start, next - start]);
      start = -1;
    };
    for (const key of [...this.pages.keys()].sort((a, b) => a - b)) {
      const bits = this.pages.get(key)!.bits;
      const base = key * PAGE_CLUSTERS;
      for (let w = 0; w < PAGE_WORDS; w++) {
        const word = bits[w]!;
        if (word === 0) continue;
        for (let b = 0; b < 32; b++) {
          if ((word & (1 << b)) === 0) continue;
          const cluster = base + w * 32 + b;
          if (cluster !== next) {
            close();
            start = cluster;
          }
          next = cluster + 1;
        }
      }
    }
    close();
    return runs;
  }
}
