import { DiskError, type BlockFile, type BlockStore, type StoreCapabilities, type StoreOpenOptions } from '@q/raw';
import type { NbdFileOptions } from './nbd-block-file.js';
import { formatNbdUri, parseNbdUri } from './nbd-uri.js';
import { openNbdFile, probeNbdExport } from './node-nbd-client.js';

/** Options for every export the store opens (`connections`, `handshakeTimeoutMs`, `maxPayload`). */
export type NbdStoreOptions = Omit<NbdFileOptions, 'exportName' | 'writable' | 'name'>;

/**
 * NBD exports as a store: names are `nbd://HOST[:PORT]/EXPORT`, `nbd+unix:///EXPORT?socket=PATH` and QEMU's legacy
 * `nbd:HOST:PORT[:exportname=NAME]` / `nbd:unix:PATH[:exportname=NAME]`, so `openImage`, backing chains and the CLI
 * reach images on NBD servers. Route it in with `routeStore({ nbd: nbdStore(), 'nbd+unix': nbdStore(), ... }, files)`.
 *
 * An export exists already and has a fixed size: `create` opens it for writing, `truncate` (emptying it) is
 * E_UNSUPPORTED. A lock asked for at open is the server's business (it holds the file, as with QEMU's nbd driver,
 * which takes no locks): it is ignored.
 */
export function nbdStore(options: NbdStoreOptions = {}): BlockStore {
  const capabilities: StoreCapabilities = { write: true, lock: false, deallocate: true };
  return {
    capabilities,
    open: async (name: string, open: StoreOpenOptions = {}): Promise<BlockFile> => {
      if (open.truncate === true) {
        throw new DiskError('E_UNSUPPORTED', 'an NBD export has a fixed size and cannot be emptied', { file: name });
      }
      return openNbdFile(name, { ...options, writable: open.writable === true || open.create === true });
    },
    // An export has no directory, so a relative name recorded by an image on one cannot be resolved (QEMU refuses it
    // too); a name with a protocol of its own never reaches here through routeStore.
    resolve: (base: string, name: string): string => {
      if (parseable(name)) return name;
      throw new DiskError('E_UNSUPPORTED', `cannot resolve the relative name '${name}' against an NBD export`, { file: base });
    },
    identify: async (name: string): Promise<string> => formatNbdUri(parseNbdUri(name)),
    exists: async (name: string): Promise<boolean> =>
      probeNbdExport(name, options).then(
        () => true,
        () => false,
      ),
  };
}

function parseable(name: string): boolean {
  try {
    parseNbdUri(name);
    return true;
  } catch {
    return false;
  }
}
