/**
 * QEMU's block permissions, as bits. QEMU locks an image by them so that processes exclude each other (observed
 * with qemu 7.2 in /proc/locks and strace; no QEMU source read): for each permission it uses it holds a shared
 * OFD lock on byte 100 + bit, and for each permission it will not let others use, on byte 200 + bit. Then it asks
 * (F_OFD_GETLK) whether anyone else holds 200 + bit for a permission it uses, or 100 + bit for one it refuses.
 */
export const PERMISSION = {
  consistentRead: 1 << 0,
  write: 1 << 1,
  writeUnchanged: 1 << 2,
  resize: 1 << 3,
} as const;

/** The names QEMU's messages give the permissions, by bit. */
export const PERMISSION_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'];
export const PERMISSION_BITS = PERMISSION_NAMES.length;

/**
 * What one open of a file uses (`take`) and refuses to share (`unshare`), as PERMISSION bits. Which sets QEMU
 * takes for which open (the format driver adds its own to what the user asks) is @q/vkd's lock model.
 */
export interface LockPermissions {
  readonly take: number;
  readonly unshare: number;
}
