import { PERMISSION, type LockPermissions } from '@q/raw/node';

const { consistentRead, write, resize } = PERMISSION;

/**
 * Which of QEMU's lock bytes a file gets, worked out from what qemu-io, qemu-img, qemu-nbd and qemu-system leave in
 * /proc/locks (no QEMU source read). The user of a disk (a tool, an NBD export, a VM) asks for permissions; the
 * format driver adds its own:
 * - qcow2 refuses to share write and resize of its file (concurrent metadata updates would corrupt it), even when
 *   only reading, and takes write and resize when writable (it allocates, so it grows the file);
 * - raw adds nothing: a raw file shares whatever its user shares (qemu-io -r on raw locks byte 100 only);
 * - force-share (-U) drops every refusal.
 * Every combination of tool and format observed matched this model; tests/locks checks it against QEMU.
 */
export function imageFileLocks(format: string, user: LockPermissions, writable: boolean, forceShare: boolean): LockPermissions {
  if (format !== 'qcow2') return { take: user.take, unshare: forceShare ? 0 : user.unshare };
  return {
    take: user.take | (writable ? write | resize : 0),
    unshare: forceShare ? 0 : user.unshare | write | resize,
  };
}

/** An external data file: the qcow2 driver is its user (it writes and grows it) and shares everything but resize. */
export function dataFileLocks(writable: boolean, forceShare: boolean): LockPermissions {
  return { take: consistentRead | (writable ? write | resize : 0), unshare: forceShare ? 0 : resize };
}

/** What the overlay above needs from its backing file: to read it, refusing nothing (the format adds its own). */
export const BACKING_USER: LockPermissions = { take: consistentRead, unshare: 0 };

/** A tool's default: read, and write when writable, refusing nothing (qemu-io, qemu-img map/check/compare). */
export function toolUser(writable: boolean): LockPermissions {
  return { take: consistentRead | (writable ? write : 0), unshare: 0 };
}

/** Named users whose needs differ from a tool's, as observed. */
export const LOCK_USERS = {
  /** qemu-img info: reads only metadata, needs nothing. */
  metadataOnly: { take: 0, unshare: 0 },
  /** An NBD export (qemu-nbd): its size is fixed for clients, so nobody may resize the image. */
  export: (writable: boolean): LockPermissions => ({ take: consistentRead | (writable ? write : 0), unshare: resize }),
  /** qemu-img convert's source: must not change while it is copied. */
  copySource: { take: consistentRead, unshare: write | resize },
  /** A new image being created (qemu-img create): written and sized, nobody else may resize it. */
  creating: { take: write | resize, unshare: resize },
} as const;
