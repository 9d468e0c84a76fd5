import { DiskError, hasProtocol, routeStore, type BlockFile, type BlockStore, type StoreCapabilities, type StoreOpenOptions } from '@q/raw';
import { nodeFileStore, type NodeFileStoreOptions } from '@q/raw/node';

/**
 * The store the driver, the CLI and the NBD server open names through unless given another: local files (the
 * Node file store, with QEMU's locks and hole punching); by protocol, `http(s)://` URLs (@q/http) and NBD exports
 * (`nbd://`, `nbd+unix://`, `nbd+tcp://`, QEMU's `nbd:`; @q/nbd). The URL stores load when a name first needs
 * them, so a command on local files pays nothing for them at startup.
 */
export function defaultStore(options: NodeFileStoreOptions = {}): BlockStore {
  const web = lazyStore(
    { write: false, lock: false, deallocate: false },
    // A relative name recorded by an image on a web server is relative to its URL (as QEMU's curl driver).
    (base, name) => new URL(name, base).href,
    async () => (await import('@q/http')).httpStore(),
  );
  const nbd = lazyStore(
    { write: true, lock: false, deallocate: true },
    (base, name) => {
      // An export has no directory: QEMU refuses relative names recorded by an image on one too.
      if (hasProtocol(name)) return name;
      throw new DiskError('E_UNSUPPORTED', `cannot resolve the relative name '${name}' against an NBD export`, { file: base });
    },
    async () => (await import('@q/nbd/node')).nbdStore(),
  );
  // nbd+tcp is libnbd's spelling of nbd://; nbd: alone is QEMU's legacy `nbd:HOST:PORT` and `nbd:unix:PATH`.
  return routeStore({ http: web, https: web, nbd, 'nbd+unix': nbd, 'nbd+tcp': nbd }, nodeFileStore(options));
}

/** A store whose module is imported on first use; `resolve` (synchronous by the port) is given up front. */
function lazyStore(capabilities: StoreCapabilities, resolve: (base: string, name: string) => string, load: () => Promise<BlockStore>): BlockStore {
  let loaded: Promise<BlockStore> | undefined;
  const store = (): Promise<BlockStore> => (loaded ??= load());
  return {
    capabilities,
    open: async (name: string, options?: StoreOpenOptions): Promise<BlockFile> => (await store()).open(name, options),
    resolve,
    identify: async (name) => (await store()).identify(name),
    exists: async (name) => (await store()).exists(name),
  };
}
