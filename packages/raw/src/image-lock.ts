import { ofdLockConflicts, posixSupport, setOfdLock, unavailableMessage } from '@q/posix';
import { DiskError } from './errors.js';
import { PERMISSION_BITS, PERMISSION_NAMES, type LockPermissions } from './lock-permissions.js';

export { PERMISSION, type LockPermissions } from './lock-permissions.js';

/** Byte 100 + bit: "I use this permission"; byte 200 + bit: "I do not share it". */
const USE_BASE = 100;
const UNSHARE_BASE = 200;

/**
 * Takes QEMU's locks for `permissions` on the open file `fd`, or throws E_LOCKED in QEMU's own words when another
 * process (or another open in this one) conflicts: 'Failed to get "write" lock' when it refuses a permission we
 * use, 'Failed to get shared "write" lock' when it uses one we refuse. The locks are held until the descriptor is
 * closed. Where the platform cannot lock (not Linux), E_UNSUPPORTED: an image is never opened silently unlocked.
 */
export function lockImage(fd: number, permissions: LockPermissions, file: string): void {
  const support = posixSupport();
  if (!support.available) {
    throw new DiskError('E_UNSUPPORTED', `${unavailableMessage('image locking', support.reason)}; open without locking to go on`, { file });
  }
  // Every byte first, then the checks: two processes opening at once each see the other's bytes.
  for (const [base, mask] of [[USE_BASE, permissions.take], [UNSHARE_BASE, permissions.unshare]] as const) {
    for (const bit of bitsOf(mask)) {
      if (!setOfdLock(fd, base + bit, 1, 'read')) {
        unlockImage(fd);
        throw new DiskError('E_LOCKED', `Failed to lock byte ${base + bit}`, { file });
      }
    }
  }
  const conflict = firstConflict(fd, permissions);
  if (conflict !== undefined) {
    unlockImage(fd);
    throw new DiskError('E_LOCKED', `${conflict}\nIs another process using the image [${file}]?`, { file });
  }
}

/** QEMU's order: the permissions we use (is any refused by another?), then those we refuse (is any in use?). */
function firstConflict(fd: number, permissions: LockPermissions): string | undefined {
  for (const bit of bitsOf(permissions.take)) {
    if (ofdLockConflicts(fd, UNSHARE_BASE + bit, 1, 'write')) return `Failed to get "${PERMISSION_NAMES[bit]}" lock`;
  }
  for (const bit of bitsOf(permissions.unshare)) {
    if (ofdLockConflicts(fd, USE_BASE + bit, 1, 'write')) return `Failed to get shared "${PERMISSION_NAMES[bit]}" lock`;
  }
  return undefined;
}

/** Drops every permission byte this open holds (closing the descriptor does the same). */
export function unlockImage(fd: number): void {
  if (!posixSupport().available) return;
  for (let bit = 0; bit < PERMISSION_BITS; bit++) {
    setOfdLock(fd, USE_BASE + bit, 1, 'unlock');
    setOfdLock(fd, UNSHARE_BASE + bit, 1, 'unlock');
  }
}

function bitsOf(mask: number): number[] {
  const bits: number[] = [];
  for (let bit = 0; bit < PERMISSION_BITS; bit++) if ((mask & (1 << bit)) !== 0) bits.push(bit);
  return bits;
}
