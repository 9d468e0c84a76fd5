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
 * E_UNSUPPORTED. NBD has no image locks, so a lock asked for at open is E_UNSUPPORTED rather than silently dropped.
 */
export function nbdStore(options: NbdStoreOptions = {}): BlockStore {
  const capabilities: StoreCapabilities = { write: true, lock: false, deallocate: true };
  return {
    capabilities,
    open: async (name: string, open: StoreOpenOptions = {}): Promise<BlockFile> => {
      if (open.lock !== undefined) {
        throw new DiskError('E_UNSUPPORTED', 'NBD exports take no image locks; open without locking', { file: name });
      }
      if (open.truncate === true) {
        throw new DiskError('E_UNSUPPORTED', 'an NBD export has a fixed size and cannot be emptied', { file: name });
      }
      return openNbdFile(name, { ...options, writable: open.writable === true || open.create === true });
    },
    // QEMU cannot resolve a relative name against an nbd: image (an export has no directory); the name stands as
    // recorded, like one with a protocol of its own.
    resolve: (_base: string, name: string): string => name,
    identify: async (name: string): Promise<string> => formatNbdUri(parseNbdUri(name)),
    exists: async (name: string): Promise<boolean> =>
      probeNbdExport(name, options).then(
        () => true,
        () => false,
      ),
  };
}
