import { DiskError, type BlockFile, type BlockStore, type StoreCapabilities, type StoreOpenOptions } from '@q/raw';
import { HttpBlockFile, requestUrl } from './http-file.js';
import { resolveHttpOptions, type HttpOptions } from './http-options.js';
import { RangeClient } from './range-client.js';

/**
 * Images on a web server as a store, for `http:` and `https:` names: read-only, opened with range requests. Join it
 * with other stores by protocol (`routeStore({ http: store, https: store }, files)`) so a local overlay can have a
 * backing file on a server. A relative backing name resolves against the image's URL, as QEMU's curl driver does,
 * so a chain on a server stays on that server.
 */
export function httpStore(options: HttpOptions = {}): BlockStore {
  // Bad options fail here, at the top, rather than at the first open of a backing file.
  const resolved = resolveHttpOptions(options);
  const capabilities: StoreCapabilities = { write: false, lock: false, deallocate: false };
  return {
    capabilities,
    open: async (name: string, open: StoreOpenOptions = {}): Promise<BlockFile> => {
      if (open.writable === true || open.create === true || open.truncate === true) {
        throw new DiskError('E_READ_ONLY', 'files over HTTP are read-only', { file: name });
      }
      // `open.lock` is ignored: a file on a web server is the server's; QEMU's curl driver takes no locks either.
      return HttpBlockFile.open(name, options);
    },
    resolve: (base: string, name: string): string => {
      try {
        return new URL(name, base).href;
      } catch {
        throw new DiskError('E_INVALID', `cannot resolve '${name}' against this URL`, { file: base });
      }
    },
    identify: async (name: string): Promise<string> => requestUrl(name),
    exists: async (name: string): Promise<boolean> => new RangeClient(requestUrl(name), name, resolved).probe(),
  };
}
