import type { BlockDevice } from '@q/raw';
import type { DirtyBitmapSource } from './dirty-bitmap-source.js';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol.js';

/** What the server offers: one device under one name. */
export interface NbdExport {
  device: BlockDevice;
  /** The name clients ask for; the empty name (the protocol's "default export") is always accepted too. */
  name: string;
  /** Shown by `nbdinfo` (NBD_INFO_DESCRIPTION) and in NBD_OPT_LIST. */
  description?: string;
  /** Refuse writes even when the device could take them (`qcow serve -r`). */
  readOnly: boolean;
  /** Advertise CAN_MULTI_CONN (default true); false when the server takes one connection at a time. */
  multiConn?: boolean;
  /** Offer `qemu:allocation-depth` (`qemu-nbd -A`). */
  allocationDepth?: boolean;
  /** Offer `qemu:dirty-bitmap:NAME` for each (`qemu-nbd -B NAME`). */
  dirtyBitmaps?: readonly DirtyBitmapSource[];
}

/** Whether the export takes writes: neither the user nor the device says otherwise. */
export function exportIsReadOnly(nbdExport: NbdExport): boolean {
  return nbdExport.readOnly || nbdExport.device.readOnly;
}

/** Whether a client's export name selects this export. */
export function exportMatches(nbdExport: NbdExport, name: string): boolean {
  return name === '' || name === nbdExport.name;
}

/**
 * The transmission flags for this export (proto.md "Transmission flags"). Write-side features are not exposed on
 * a read-only export, so well-behaved clients never try them. CAN_MULTI_CONN is honest: every connection goes to
 * the same device object in this process, so a flush on one covers writes completed on any other; it is left out
 * when the server serves one connection at a time (`multiConn: false`), where a second one would only wait. SEND_DF only
 * once structured replies are on (the spec requires it clear otherwise): with DF a read comes back as one data chunk,
 * without it a long read may come as data and hole chunks.
 */
export function transmissionFlags(nbdExport: NbdExport, structuredReplies: boolean): number {
  let flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
  if (nbdExport.multiConn !== false) flags |= NBD_FLAG_CAN_MULTI_CONN;
  if (exportIsReadOnly(nbdExport)) flags |= NBD_FLAG_READ_ONLY;
  else flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
  if (structuredReplies) flags |= NBD_FLAG_SEND_DF;
  return flags;
}
