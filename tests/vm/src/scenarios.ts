import { REPORT_PREFIX } from './guest/init-script.js';
import { sumLines, type FileSums } from './host/ext4-files.js';

/**
 * The guest's side of each boot, as /scenario.sh (busybox sh, run with -e so any failing command fails the boot).
 * (-e spares a command that fails on the left of && or ||: checks stand alone on their lines.) `say` prints a report line for the host; `sums` reports every file's sha256 (lost+found left out), sorted, so
 * the host can compare the guest's view with the image's bytes after the guest is gone.
 */
const prelude = `say() { echo "${REPORT_PREFIX}$*"; }
sums() {
  find /mnt -path /mnt/lost+found -prune -o -type f -print | sort | while read -r f; do
    say sum $(sha256sum "$f")
  done
}
`;

/** The expected sums as a file in the guest, for `sha256sum -c` run from /mnt. */
function expectFile(path: string, sums: FileSums): string {
  return `cat > ${path} <<'SUMS'\n${sumLines(sums)}SUMS\n`;
}

/**
 * Boot a, read-write through `qcow serve`: the base's files must read right through the overlay, then every kind
 * of write the block layer sends. A large file and many small ones allocate clusters in the overlay; writing
 * into the middle of a base file is copy-on-write of a cluster the base holds; a file of zeroes goes out as
 * write-zeroes (the drive's detect-zeroes); a written then deleted file gives fstrim something to discard. Sums
 * are printed after the final sync, so they are what the disk holds.
 */
export function readWriteScenario(): string {
  return `${prelude}
e2fsck -fn /dev/vda
mount -t ext4 /dev/vda /mnt
cd /mnt
sha256sum -c -s MANIFEST.sha256
cd /
say step base-files-verified
mkdir -p /mnt/new/many
dd if=/dev/urandom of=/mnt/new/large.bin bs=1M count=24 2>/dev/null
i=0
while [ $i -lt 150 ]; do
  head -c $((i * 397 + 1)) /dev/urandom > /mnt/new/many/f$i
  i=$((i + 1))
done
dd if=/dev/urandom of=/mnt/data/blob.bin bs=4096 seek=300 count=40 conv=notrunc 2>/dev/null
dd if=/dev/urandom of=/mnt/small/0/file-0 bs=1 seek=5 count=100 conv=notrunc 2>/dev/null
dd if=/dev/zero of=/mnt/new/zeros.bin bs=1M count=8 2>/dev/null
dd if=/dev/urandom of=/mnt/new/deleted.bin bs=1M count=8 2>/dev/null
sync
rm /mnt/new/deleted.bin
sync
# An assignment's status is its command substitution's: -e sees a failing fstrim.
trimmed=$(fstrim -v /mnt)
say trim $trimmed
sync
sums
umount /mnt
e2fsck -fn /dev/vda
`;
}

/**
 * Boot b, QEMU's own qcow2 driver on the image after `qcow snapshot -c`: everything boot a left must be there
 * (sha256sum -c of boot a's sums, checked in the guest); then a few changes after the snapshot, so that boot c can
 * show the snapshot's state and not the current one.
 */
export function directScenario(expected: FileSums): string {
  return `${prelude}
${expectFile('/tmp/expected.sha256', expected)}
e2fsck -fn /dev/vda
mount -t ext4 /dev/vda /mnt
cd /mnt
sha256sum -c -s /tmp/expected.sha256
cd /
say step snapshot-state-verified
dd if=/dev/urandom of=/mnt/after-snapshot.bin bs=1M count=4 2>/dev/null
dd if=/dev/urandom of=/mnt/data/blob.bin bs=4096 seek=10 count=8 conv=notrunc 2>/dev/null
rm -r /mnt/new/many
sync
sums
umount /mnt
e2fsck -fn /dev/vda
`;
}

/** Boot c, the snapshot served read-only: the guest reports what it sees, for the host to compare with boot a. */
export function snapshotScenario(): string {
  return `${prelude}
say readonly $(cat /sys/block/vda/ro)
e2fsck -fn /dev/vda
mount -t ext4 -o ro /dev/vda /mnt
sums
umount /mnt
`;
}

/**
 * Boot d, `qcow serve --cow`: the guest writes as to any disk, then drops its page cache and reads everything
 * back, so the sums come from the export (the server's temporary overlay), not from guest memory; `wrote` lines
 * are the sums before the drop, for the host to compare.
 */
export function cowScenario(): string {
  return `${prelude}
mount -t ext4 /dev/vda /mnt
mkdir -p /mnt/cow
dd if=/dev/urandom of=/mnt/cow/large.bin bs=1M count=16 2>/dev/null
dd if=/dev/urandom of=/mnt/data/blob.bin bs=4096 seek=50 count=30 conv=notrunc 2>/dev/null
i=0
while [ $i -lt 40 ]; do
  head -c $((i * 1500 + 7)) /dev/urandom > /mnt/cow/f$i
  i=$((i + 1))
done
sync
for f in /mnt/cow/large.bin /mnt/cow/f39 /mnt/data/blob.bin; do say wrote $(sha256sum $f); done
echo 3 > /proc/sys/vm/drop_caches
sums
umount /mnt
e2fsck -fn /dev/vda
`;
}

/**
 * Boot e, writes until the host kills the server: each file is fsync'd (busybox `sync FILE`) before its `synced`
 * line, so every file named in one must survive whatever happens next, while a background writer keeps unsynced
 * data going out. The loop is bounded; the host pulls the plug long before its end.
 */
export function fsyncLoopScenario(): string {
  return `${prelude}
mount -t ext4 /dev/vda /mnt
mkdir -p /mnt/crash
# A writer in the background that never fsyncs: the kernel's writeback keeps NBD writes in flight at the kill.
dd if=/dev/urandom of=/mnt/crash/background.bin bs=64k count=1024 2>/dev/null &
i=0
while [ $i -lt 2000 ]; do
  head -c $((i * 7919 % 150000 + 4096)) /dev/urandom > /mnt/crash/f$i
  sync /mnt/crash/f$i
  say synced $(sha256sum /mnt/crash/f$i)
  i=$((i + 1))
done
say step loop-ended
`;
}

/** The reboot after the crash: the kernel replays ext4's journal at mount, then every fsync'd file must match. */
export function recoveryScenario(synced: FileSums): string {
  return `${prelude}
${expectFile('/tmp/synced.sha256', synced)}
mount -t ext4 /dev/vda /mnt
cd /mnt
sha256sum -c -s /tmp/synced.sha256
cd /
say step synced-files-verified
umount /mnt
e2fsck -fn /dev/vda
`;
}
