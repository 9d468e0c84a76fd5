import { httpStore } from '@q/http';
import { nbdStore } from '@q/nbd/node';
import { routeStore, type BlockStore } from '@q/raw';
import { nodeFileStore, type NodeFileStoreOptions } from '@q/raw/node';

/**
 * The store the driver, the CLI and the NBD server open names through unless given another: local files (the
 * Node file store, with QEMU's locks and hole punching); by protocol, `http(s)://` URLs (@q/http) and NBD exports
 * (`nbd://`, `nbd+unix://`, QEMU's `nbd:`; @q/nbd).
 */
export function defaultStore(options: NodeFileStoreOptions = {}): BlockStore {
  const web = httpStore();
  const nbd = nbdStore();
  // nbd+tcp is libnbd's spelling of nbd://; nbd: alone is QEMU's legacy `nbd:HOST:PORT` and `nbd:unix:PATH`.
  return routeStore({ http: web, https: web, nbd, 'nbd+unix': nbd, 'nbd+tcp': nbd }, nodeFileStore(options));
}
