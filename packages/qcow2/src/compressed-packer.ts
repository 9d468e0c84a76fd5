/**
 * Places compressed clusters byte after byte in the host file, as QEMU does: a compressed cluster starts where the
 * previous one ended when that host cluster still has room for another reference, so consecutive compressed
 * clusters share host clusters. Every host cluster a compressed cluster's bytes touch gets one reference for it
 * (spec, "Compressed Clusters Descriptor"); a host cluster whose refcount would pass the refcount width's maximum
 * (1 with refcount_bits=1) is not shared further.
 *
 * The packer only counts: the caller owns the file and says where free space starts.
 */
export class CompressedPacker {
  /** References of host clusters holding compressed bytes (index: host cluster). Others hold one reference. */
  private readonly counts = new Map<number, number>();
  /** Where the current run of compressed bytes ends, when the next compressed cluster may follow it. */
  private runEnd: number | undefined;

  constructor(
    private readonly clusterSize: number,
    private readonly maxReferences: number,
  ) {}

  /**
   * Where `length` compressed bytes go, given that the file's free space starts at `end` (unaligned only inside
   * the current run): right after the previous compressed cluster when the run continues there and its last
   * host cluster can take a reference, else at the next cluster boundary. Counts the references.
   */
  place(end: number, length: number): number {
    const { clusterSize } = this;
    let host = Math.ceil(end / clusterSize) * clusterSize;
    if (this.runEnd === end && end % clusterSize !== 0 && this.references(Math.floor(end / clusterSize)) < this.maxReferences) host = end;
    const first = Math.floor(host / clusterSize);
    const last = Math.floor((host + length - 1) / clusterSize);
    for (let cluster = first; cluster <= last; cluster++) this.counts.set(cluster, (this.counts.get(cluster) ?? 0) + 1);
    this.runEnd = host + length;
    return host;
  }

  /** Something other than compressed data follows: the next compressed cluster starts on a boundary. */
  endRun(): void {
    this.runEnd = undefined;
  }

  /** References host `cluster` holds: its compressed clusters, or 1 for any other cluster the writer used. */
  references(cluster: number): number {
    return this.counts.get(cluster) ?? 1;
  }
}
