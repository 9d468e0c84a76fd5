import { httpStore } from '@q/http';
import { routeStore, type BlockStore } from '@q/raw';
import { nodeFileStore, type NodeFileStoreOptions } from '@q/raw/node';

/**
 * The store the driver, the CLI and the NBD server open names through unless given another: local files (the
 * Node file store, with QEMU's locks and hole punching), by protocol the stores that serve URLs.
 */
export function defaultStore(options: NodeFileStoreOptions = {}): BlockStore {
  const web = httpStore();
  return routeStore({ http: web, https: web }, nodeFileStore(options));
}
