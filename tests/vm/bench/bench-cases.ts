import type { BenchSizes } from './bench-options.js';

/**
 * The guest's disk, in MiB: the base's ext4 first (the small-files case mounts it), then raw regions past the file
 * system's end for the direct-I/O cases, which thus measure the server with no file system in between (no
 * journal, no allocator, no page cache: each dd block is one request, or a few, to the server). The backing region
 * (up to 1 GiB) holds random data in the base only; the write regions (up to 512 and 384 MiB) are unallocated in
 * both base and overlay at the start.
 */
export const LAYOUT = { diskMiB: 2048, ext4MiB: 128, backingAt: 128, write1mAt: 1152, write4kAt: 1664 } as const;

/**
 * The MiB at the end of the 1 MiB-write and backing regions the guest checks after the steps (md5, under TCG about
 * 30 MB/s: checking everything took twice as long as the steps themselves).
 */
export const CHECKED_MIB = 16;

/** One timed step of the guest's workload, and how its time becomes the table's number. */
export interface BenchCase {
  /** Its name in report lines (no spaces). */
  id: string;
  /** The table's case column. */
  label: string;
  /** MiB/s and IOPS: more is faster; s: less is faster. */
  unit: 'MiB/s' | 'IOPS' | 's';
  /** What one run moves, in the unit's numerator (MiB, operations); 1 for a time. */
  amount: number;
  /** Untimed shell before the step's flush, and after the step. */
  before?: string;
  after?: string;
  /** The timed shell (busybox sh, -e). */
  command: string;
}

/**
 * The MiB of random bytes the write steps copy from (/tmp/src in the guest, in its RAM): what the two 4 KiB write
 * steps need, and at most 128 MiB for the 1 MiB writes, which copy it as many times as it takes.
 */
export function sourceMiB(sizes: BenchSizes): number {
  return Math.max(Math.min(sizes.write1mMiB, 128), (2 * sizes.ops4k * 4096) / (1024 * 1024));
}

/** The number a case's table cell shows for one step time. */
export function caseValue(benchCase: BenchCase, seconds: number): number {
  return benchCase.unit === 's' ? seconds : benchCase.amount / seconds;
}

/**
 * The six steps of issue 13, in the order they run in each boot. Writes copy /tmp/src (random bytes the guest
 * made before the first step: a server that detected zeroes would otherwise write nothing). The 4 KiB steps are
 * sequential, one dd at queue depth 1: busybox dd has no random offsets, and a dd per block would time the guest's
 * fork under TCG rather than the server. So "new" writes one cluster in 16 (64 KiB clusters) through allocation
 * and the rest into the cluster just allocated; the overwrite and read steps then work on those same clusters,
 * all allocated in the overlay.
 */
export function benchCases(sizes: BenchSizes): BenchCase[] {
  const block4k = LAYOUT.write4kAt * 256;
  const n = sizes.ops4k;
  const source = sourceMiB(sizes);
  const fits =
    n * 4096 <= (LAYOUT.diskMiB - LAYOUT.write4kAt) * 1024 * 1024 &&
    sizes.write1mMiB <= LAYOUT.write4kAt - LAYOUT.write1mAt &&
    sizes.backingMiB <= LAYOUT.write1mAt - LAYOUT.backingAt;
  const shaped = n % 256 === 0 && sizes.write1mMiB % source === 0 && Math.min(source, sizes.backingMiB) >= CHECKED_MIB;
  if (!fits || !shaped) throw new Error('benchmark sizes do not fit the disk layout');
  return [
    {
      id: 'write-1m',
      label: '1 MiB direct writes, unallocated region',
      unit: 'MiB/s',
      amount: sizes.write1mMiB,
      // The source again and again, one dd per pass: a few forks in a step of seconds.
      command: `k=0
while [ $k -lt ${sizes.write1mMiB / source} ]; do
  dd if=/tmp/src of=/dev/vda bs=1M count=${source} seek=$((${LAYOUT.write1mAt} + k * ${source})) oflag=direct status=none
  k=$((k + 1))
done`,
    },
    {
      id: 'write-4k-new',
      label: '4 KiB direct writes, new clusters (sequential)',
      unit: 'IOPS',
      amount: n,
      command: `dd if=/tmp/src of=/dev/vda bs=4k count=${n} seek=${block4k} oflag=direct status=none`,
    },
    {
      id: 'write-4k-over',
      label: '4 KiB direct overwrites of those clusters',
      unit: 'IOPS',
      amount: n,
      command: `dd if=/tmp/src of=/dev/vda bs=4k count=${n} skip=${n} seek=${block4k} oflag=direct status=none`,
    },
    {
      id: 'read-4k',
      label: '4 KiB direct reads of those clusters',
      unit: 'IOPS',
      amount: n,
      command: `dd if=/dev/vda of=/dev/null bs=4k count=${n} skip=${block4k} iflag=direct status=none`,
    },
    {
      id: 'read-backing',
      label: '1 MiB direct reads through the backing file',
      unit: 'MiB/s',
      amount: sizes.backingMiB,
      command: `dd if=/dev/vda of=/dev/null bs=1M count=${sizes.backingMiB} skip=${LAYOUT.backingAt} iflag=direct status=none`,
    },
    {
      id: 'small-files',
      label: `${sizes.smallFiles} files of 4 KiB on ext4, then sync`,
      unit: 's',
      amount: 1,
      // noinit_itable: no background zeroing of inode tables (ext4lazyinit) writing during the step.
      before: 'mount -t ext4 -o noinit_itable /dev/vda /mnt\nmkdir /mnt/small-bench',
      // echo is a shell builtin: no fork per file, so the step is the file system's work and the sync's I/O.
      command: `i=0\nwhile [ $i -lt ${sizes.smallFiles} ]; do\n  echo -n "$block" > /mnt/small-bench/f$i\n  i=$((i + 1))\ndone\nsync`,
      after: 'umount /mnt',
    },
  ];
}
