import type { BlockFile } from './block-file.js';
import type { LockPermissions } from './lock-permissions.js';

/**
 * The port for opening images by name, beside BlockFile (which reads and writes one open file). Everything that
 * opens a name goes through a store: the driver's top image, backing files at any depth, external data files, the
 * CLI and the NBD server. Local files, memory, a browser's Blob, HTTP range requests and NBD exports are stores;
 * `routeStore` joins several by the name's protocol, so a store swapped in at the top reaches every level.
 */
export interface BlockStore {
  readonly capabilities: StoreCapabilities;
  /** Opens `name` (read-only unless asked); a name that does not exist is E_NOT_FOUND. */
  open(name: string, options?: StoreOpenOptions): Promise<BlockFile>;
  /**
   * The name of a file that the image called `base` records as `name` (a backing file, an external data file), by
   * QEMU's rule: a relative name is relative to the image that records it, never to the current directory.
   */
  resolve(base: string, name: string): string;
  /**
   * A stable identity for `name` (a real path, a canonical URL), so that a backing chain that comes back to a file
   * through another name is caught as a loop.
   */
  identify(name: string): Promise<string>;
  /** Whether a file called `name` exists: decides whether `FILE@SNAP` names a snapshot or a file. */
  exists(name: string): Promise<boolean>;
}

export interface StoreOpenOptions {
  /** Open for writing; default read-only. A store without `capabilities.write` refuses with E_READ_ONLY. */
  writable?: boolean;
  /** Create the file when missing (implies writable). */
  create?: boolean;
  /** Empty an existing file (after taking `lock`, so a file in use keeps its bytes). */
  truncate?: boolean;
  /**
   * Take QEMU's image locks at open (see `BlockFile.lock`), before `truncate`. Locks are a property of local files
   * that other processes open too; stores of files nobody else can reach (memory, Blobs) and of remote names (HTTP,
   * NBD: the server holds the file, as with QEMU) have none and ignore this. A store of local files that cannot
   * lock here fails with E_UNSUPPORTED: a lock asked for is never silently dropped.
   */
  lock?: LockPermissions;
}

export interface StoreCapabilities {
  /** Files can be opened for writing and created. */
  readonly write: boolean;
  /** Files take QEMU's image locks (`BlockFile.lock`), so QEMU and other processes see this one. */
  readonly lock: boolean;
  /** Files punch holes (`BlockFile.deallocate`): space freed in an image is given back. */
  readonly deallocate: boolean;
}
