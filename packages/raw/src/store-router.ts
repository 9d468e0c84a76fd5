import type { BlockFile } from './block-file.js';
import type { BlockStore, StoreCapabilities, StoreOpenOptions } from './block-store.js';
import { DiskError } from './errors.js';
import { protocolOf } from './store-names.js';

/**
 * One store out of several, chosen by the protocol of each name: `{ https: httpStore, nbd: nbdStore }` with the
 * local file store for plain names. A name a route does not cover is E_UNSUPPORTED, naming the protocol. A
 * relative name recorded by an image resolves through the image's own store (relative to a URL for an image on a
 * web server), so a local overlay can have a backing file on a server and the other way round.
 */
export function routeStore(routes: Readonly<Record<string, BlockStore>>, files: BlockStore | undefined): BlockStore {
  const table = new Map(Object.entries(routes).map(([scheme, store]) => [scheme.toLowerCase().replace(/:$/, ''), store]));
  const storeFor = (name: string): BlockStore => {
    const scheme = protocolOf(name);
    const store = scheme === undefined ? files : table.get(scheme);
    if (store !== undefined) return store;
    throw new DiskError(
      'E_UNSUPPORTED',
      scheme === undefined ? 'local files are not available here' : `Unknown protocol '${scheme}'`,
      { file: name },
    );
  };
  const all = [...table.values(), ...(files === undefined ? [] : [files])];
  // Asked when read, not now: a store's answer may cost (the local file store loads its FFI to give it).
  const capabilities: StoreCapabilities = {
    get write() {
      return all.some((store) => store.capabilities.write);
    },
    get lock() {
      return all.some((store) => store.capabilities.lock);
    },
    get deallocate() {
      return all.some((store) => store.capabilities.deallocate);
    },
  };
  return {
    capabilities,
    open: async (name: string, options?: StoreOpenOptions): Promise<BlockFile> => storeFor(name).open(name, options),
    resolve: (base, name) => (protocolOf(name) !== undefined ? name : storeFor(base).resolve(base, name)),
    identify: async (name) => storeFor(name).identify(name),
    exists: async (name) => {
      const scheme = protocolOf(name);
      const store = scheme === undefined ? files : table.get(scheme);
      return store === undefined ? false : store.exists(name);
    },
  };
}
