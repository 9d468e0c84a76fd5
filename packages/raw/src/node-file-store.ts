import { existsSync, realpath, realpathSync, stat } from 'node:fs';
import type { BlockFile } from './block-file.js';
import type { BlockStore, StoreCapabilities, StoreOpenOptions } from './block-store.js';
import { posixSupport } from '@q/posix';
import { blocksCaller, NodeBlockFile, type NodeFileOptions } from './node-file.js';
import { resolveFileName } from './store-names.js';

export interface NodeFileStoreOptions {
  /** How files opened here make system calls (`NodeFileOptions.blocking`); default: libuv's thread pool. */
  blocking?: NodeFileOptions['blocking'];
  /** Write-behind for the writable files opened here (`NodeFileOptions.writeBehind`); default off. */
  writeBehind?: number;
}

/**
 * The local file system as a store: the default of the driver, the CLI and the NBD server. Locks and hole
 * punching are there where @q/posix can make the calls (Linux, koffi loaded); `capabilities` says which.
 */
export function nodeFileStore(options: NodeFileStoreOptions = {}): BlockStore {
  // Getters: @q/posix loads koffi when first asked, which a command that never locks or punches should not pay for.
  const capabilities: StoreCapabilities = {
    write: true,
    get lock() {
      return posixSupport().available;
    },
    get deallocate() {
      return posixSupport().available;
    },
  };
  const blockingCalls = blocksCaller(options.blocking);
  return {
    capabilities,
    open: (name: string, open: StoreOpenOptions = {}): Promise<BlockFile> =>
      NodeBlockFile.open(name, { ...open, blocking: options.blocking, writeBehind: options.writeBehind }),
    resolve: resolveFileName,
    // node:fs's callbacks, not fs.promises: its first use loads node:fs/promises and the stream and readline modules
    // behind it (~2 ms of a `qcow info`, which identifies every image it opens).
    identify: blockingCalls
      ? (name) => Promise.resolve(realpathOrName(name))
      : (name) => new Promise((resolve) => realpath.native(name, (error, real) => resolve(error === null ? real : name))),
    exists: blockingCalls
      ? (name) => Promise.resolve(existsSync(name))
      : (name) => new Promise((resolve) => stat(name, (error) => resolve(error === null))),
  };
}

/** The name with every link resolved, or the name itself when it cannot be (missing, unreadable). */
function realpathOrName(name: string): string {
  try {
    return realpathSync.native(name);
  } catch {
    return name;
  }
}
