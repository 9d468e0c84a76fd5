import { REPORT_PREFIX } from '../src/guest/init-script.js';
import type { BenchSizes } from './bench-options.js';
import { CHECKED_MIB, LAYOUT, sourceMiB, type BenchCase } from './bench-cases.js';

/**
 * The guest's /scenario.sh for every benchmark boot (busybox sh, -e): the same script whichever server is behind
 * the disk. Each case is timed by the guest's own clock, /proc/uptime (10 ms steps: busybox date has no %N), read
 * just before and after its command; the host also notes when the `begin` and `step` lines arrive, to cross-check
 * that clock. Every step starts with nothing dirty: an untimed flush of the disk (`sync /dev/vda` is fsync of the
 * device, which the kernel sends as a flush request) makes the server write back what the previous step left.
 */
export function benchScenario(cases: readonly BenchCase[], sizes: BenchSizes, backingMd5: string): string {
  const steps = cases.map(
    (benchCase) => `${benchCase.before ?? ''}
sync /dev/vda
say begin ${benchCase.id}
t0=$(now)
${benchCase.command}
t1=$(now)
say step ${benchCase.id} $t0 $t1
${benchCase.after ?? ''}`,
  );
  return `say() { echo "${REPORT_PREFIX}$*"; }
now() { read -r up rest < /proc/uptime; echo "$up"; }
md5() { md5sum | cut -d' ' -f1; }
verify() {
  if [ "$2" != "$3" ]; then say mismatch "$1" "$2" "$3"; exit 1; fi
}
# Untimed set-up: random bytes for the writes (a server may treat zeroes specially), one 4 KiB file's contents.
dd if=/dev/urandom of=/tmp/src bs=1M count=${sourceMiB(sizes)} status=none
block=$(head -c 3072 /dev/urandom | base64 -w 0)
[ \${#block} -eq 4096 ]
say ready $(now)
${steps.join('\n')}
${verification(sizes, backingMd5)}
say verified $(now)
`;
}

/**
 * Untimed checks after the steps that the server moved real data: the 4 KiB region holds what was written last,
 * the end of the 1 MiB region the end of the last pass, the end of the backing region what the host put in the
 * base (the ends only: md5 under TCG is slow), and the file system the small files went into is clean.
 */
function verification(sizes: BenchSizes, backingMd5: string): string {
  const source = sourceMiB(sizes);
  const tail = (at: number, size: number): number => at + size - CHECKED_MIB;
  return `verify write-1m "$(dd if=/tmp/src bs=1M skip=${source - CHECKED_MIB} count=${CHECKED_MIB} status=none | md5)" \\
  "$(dd if=/dev/vda bs=1M skip=${tail(LAYOUT.write1mAt, sizes.write1mMiB)} count=${CHECKED_MIB} iflag=direct status=none | md5)"
verify write-4k "$(dd if=/tmp/src bs=4k skip=${sizes.ops4k} count=${sizes.ops4k} status=none | md5)" \\
  "$(dd if=/dev/vda bs=1M skip=${LAYOUT.write4kAt} count=${sizes.ops4k / 256} iflag=direct status=none | md5)"
verify read-backing ${backingMd5} \\
  "$(dd if=/dev/vda bs=1M skip=${tail(LAYOUT.backingAt, sizes.backingMiB)} count=${CHECKED_MIB} iflag=direct status=none | md5)"
if ! e2fsck -fn /dev/vda > /tmp/e2fsck.log 2>&1; then cat /tmp/e2fsck.log; exit 1; fi`;
}
