import type { Geometry, L2Entry } from '@q/format';
import type { ClusterMapper } from '@q/mapper';
import type { RefcountStore } from '@q/refcount';
import type { TrackedFile } from './tracked-file.js';

/** Room the file grows by past a new cluster at least, so appending writes truncate once per megabyte at most. */
const RESERVE_BYTES = 1 << 20;
/** The most room reserved at once (in-memory and browser stores hold it in memory until close trims it). */
const MAX_RESERVE_BYTES = 32 << 20;

/** What handing out host clusters touches: the allocator, the file that must cover them, the readers' bound. */
export interface HostAllocationParts {
  geometry: Geometry;
  file: TrackedFile;
  refcounts: RefcountStore;
  mapper: ClusterMapper;
}

/**
 * Room to reserve past the end when growing the file (`end` bytes used) for a run of `run` bytes: an eighth of the
 * file, so a long sequential allocation truncates a logarithmic number of times rather than once per megabyte,
 * and never less than the run. Close trims what is unused (TrackedFile.close): no trailing junk stays behind.
 */
export function reserveFor(end: number, run: number): number {
  return Math.max(RESERVE_BYTES, run, Math.min(MAX_RESERVE_BYTES, Math.floor(end / 8)));
}

/** Where an allocated cluster's data lives (with an external data file: its guest offset). */
export function dataHost(geometry: Geometry, entry: L2Entry, cluster: number): number {
  return geometry.externalDataFile ? cluster * geometry.clusterSize : entry.hostOffset;
}

/** Allocates a host cluster for guest `cluster` and makes the file cover it. Under the metadata lock. */
export async function newHostCluster(parts: HostAllocationParts, cluster: number): Promise<number> {
  const { geometry } = parts;
  if (geometry.externalDataFile) return cluster * geometry.clusterSize;
  const host = await parts.refcounts.allocate(1);
  await coverRun(parts, host, 1);
  return host;
}

/**
 * Host offsets for whole guest clusters `[first, first + entries.length)`: the cluster's own where `reuse` says so,
 * else new ones, taken from the allocator in as few contiguous runs as the free space allows (one, at the end of
 * the file), so their data goes out in as few writes. Under the metadata lock.
 */
export async function newHostClusters(parts: HostAllocationParts, first: number, entries: readonly L2Entry[], reuse: readonly boolean[]): Promise<number[]> {
  const { geometry } = parts;
  const { clusterSize } = geometry;
  let needed = reuse.filter((keeps) => !keeps).length;
  let next = 0;
  let left = 0;
  const hosts: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const cluster = first + i;
    if (reuse[i]) hosts.push(dataHost(geometry, entries[i]!, cluster));
    else if (geometry.externalDataFile) hosts.push(cluster * clusterSize);
    else {
      if (left === 0) {
        const run = await parts.refcounts.allocateRun(needed);
        await coverRun(parts, run.offset, run.count);
        next = run.offset;
        left = run.count;
      }
      hosts.push(next);
      next += clusterSize;
      left--;
      needed--;
    }
  }
  return hosts;
}

/**
 * Makes the file cover new clusters: fresh clusters past the end read as zeros once it does, so a truncate (with
 * room for the next ones) instead of writing zeros. Readers run outside the lock: their bound covers the clusters
 * before any L2 entry names them.
 */
async function coverRun(parts: HostAllocationParts, host: number, count: number): Promise<void> {
  const bytes = count * parts.geometry.clusterSize;
  await coverTo(parts, host + bytes, bytes);
}

/**
 * Makes the file reach `end` for `run` new bytes (room reserved past it, see reserveFor) and the readers' bound
 * follow. Under the lock.
 */
export async function coverTo(parts: HostAllocationParts, end: number, run: number): Promise<void> {
  const { file } = parts;
  await file.extendTo(end, reserveFor(file.end, run));
  parts.mapper.imageFileSize = Math.max(parts.mapper.imageFileSize, file.end);
}
