/**
 * Places compressed clusters byte after byte in the host file, as QEMU does: a compressed cluster starts where the
 * previous one ended when that host cluster still has room for another reference, so consecutive compressed
 * clusters share host clusters. Every host cluster a compressed cluster's bytes touch gets one reference for it
 * (spec, "Compressed Clusters Descriptor"); a host cluster whose refcount would pass the refcount width's maximum
 * (1 with refcount_bits=1) is not shared further.
 *
 * The packer only places and counts: the caller owns the file and says where free clusters start.
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
   * Where `length` compressed bytes go, given that whole free clusters start at `end` (cluster aligned): right
   * after the previous compressed cluster when its last host cluster has room and can take a reference (or when
   * that cluster is the last one before `end`, so the bytes can run on into free space), else at `end`. Plain
   * clusters written meanwhile do not end the run: QEMU keeps packing into the partly used cluster too (observed:
   * compressed clusters between plain ones of a qemu-img convert -c image share host clusters). Counts the
   * references.
   */
  place(end: number, length: number): number {
    const { clusterSize } = this;
    let host = end;
    const run = this.runEnd;
    if (run !== undefined && run % clusterSize !== 0) {
      const cluster = Math.floor(run / clusterSize);
      const fits = run + length <= (cluster + 1) * clusterSize;
      if (this.references(cluster) < this.maxReferences && (fits || (cluster + 1) * clusterSize === end)) host = run;
    }
    const first = Math.floor(host / clusterSize);
    const last = Math.floor((host + length - 1) / clusterSize);
    for (let cluster = first; cluster <= last; cluster++) this.counts.set(cluster, (this.counts.get(cluster) ?? 0) + 1);
    this.runEnd = host + length;
    return host;
  }

  /** References host `cluster` holds: its compressed clusters, or 1 for any other cluster the writer used. */
  references(cluster: number): number {
    return this.counts.get(cluster) ?? 1;
  }
}
