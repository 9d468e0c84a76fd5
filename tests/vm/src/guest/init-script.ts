/**
 * The guest's /init (busybox sh), the first process the kernel runs from the initramfs. It loads the modules the
 * disk and file system need, waits for the virtio disk, runs the boot's /scenario.sh (appended to the initramfs
 * per boot) and reports on the serial console, then powers off: the host's QEMU exits when the guest does.
 *
 * What the host reads back is only lines starting `@@vm ` (kernel messages share the console; `quiet` keeps them
 * few): `@@vm up`, then the scenario's own lines, then `@@vm end STATUS`. A missing `end` line means the guest
 * hung or crashed, which the host reports with the whole serial log.
 */
export const REPORT_PREFIX = '@@vm ';

export function initScript(): string {
  return `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt

say() { echo "${REPORT_PREFIX}$*"; }
die() { say end "$1" "$2"; sync; poweroff -f; sleep 60; }

# busybox insmod loads one file and resolves nothing: /etc/modules.order lists them dependencies first.
while read -r module; do
  insmod "/lib/modules/$module.ko" || die 90 "insmod $module failed"
done < /etc/modules.order

# virtio_blk probes the disk asynchronously: give it a bounded while.
n=0
while [ ! -b /dev/vda ]; do
  n=$((n + 1))
  [ "$n" -gt 200 ] && die 91 "no /dev/vda"
  sleep 0.1
done

# No network device: loopback only.
ip link set lo up
say up "$(cut -d' ' -f1 /proc/uptime)"

# The scenario runs with -e: its first failing command ends it, and its status is the boot's verdict.
sh -e /scenario.sh
status=$?
say end "$status"
sync
poweroff -f
sleep 60
`;
}
