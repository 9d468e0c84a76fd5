import { promises as fs } from 'node:fs';
import type { BlockFile } from './block-file.js';
import type { BlockStore, StoreCapabilities, StoreOpenOptions } from './block-store.js';
import { posixSupport } from '@q/posix';
import { NodeBlockFile, type NodeFileOptions } from './node-file.js';
import { resolveFileName } from './store-names.js';

export interface NodeFileStoreOptions {
  /** How files opened here make system calls (`NodeFileOptions.blocking`); default: libuv's thread pool. */
  blocking?: NodeFileOptions['blocking'];
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
  return {
    capabilities,
    open: (name: string, open: StoreOpenOptions = {}): Promise<BlockFile> =>
      NodeBlockFile.open(name, { ...open, blocking: options.blocking }),
    resolve: resolveFileName,
    identify: async (name) => fs.realpath(name).catch(() => name),
    exists: async (name) =>
      fs.stat(name).then(
        () => true,
        () => false,
      ),
  };
}
