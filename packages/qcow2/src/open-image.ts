import { openChain, probeFormat, type BackingOpener } from '@q/backing';
import type { MetadataLimits } from '@q/format';
import { DiskError, RawDisk, type BlockDevice, type BlockFile, type BlockStore, type LockPermissions } from '@q/raw';
import type { Codecs } from './codecs.js';
import { Qcow2Image } from './qcow2-image.js';

export type SnapshotKey = string | { id?: string; name?: string };

export interface OpenImageOptions {
  /** Where names are opened: the top image, its backing files at any depth, its external data file. */
  store: BlockStore;
  /** Open the top image for writing (backing files open read-only unless `writableLayer` says otherwise). */
  writable?: boolean;
  /**
   * Whether to open a backing layer (its resolved name, its depth: 1 is the top's backing file) for writing too:
   * qemu-img commit writes into a base further down the chain it reads through.
   */
  writableLayer?(name: string, depth: number): boolean | Promise<boolean>;
  /** Format of the top image (`-f`); default: probe by magic (qcow2, else raw). */
  format?: string;
  /** Open the top image at this internal snapshot (read-only). */
  snapshot?: SnapshotKey;
  /** Open the layer right below the top at this snapshot (a copy-on-write overlay over `FILE@SNAP`). */
  backingSnapshot?: SnapshotKey;
  /** Name of the top device in errors and listings; default: `name`. */
  displayName?: string;
  /** Do not open backing files (unallocated ranges read as zeros): `qemu-img info`, `-u`. */
  ignoreBacking?: boolean;
  /** Most backing layers below the top image (default 64). */
  maxBackingDepth?: number;
  /** Probe backing files whose format the overlay does not record (default true, as QEMU). */
  probeBacking?: boolean;
  /** Checks each backing or data file before it is opened; throws to refuse it (untrusted images). */
  admit?(name: string, named: string, image: string): Promise<void>;
  /** Where the data file that `image` records as `named` lives; default: `store.resolve`. */
  resolveDataFile?(image: string, named: string): Promise<string>;
  l2CacheBytes?: number;
  /** Decompressors; default: the portable ones, loaded when a compressed cluster is first read. */
  codecs?: Codecs;
  limits?: MetadataLimits;
  /** Rebuilds the refcounts of a dirty image before a read-write open (`@q/check`); without it such an image opens read-only only. */
  repairDirty?(file: BlockFile, name: string): Promise<void>;
  /**
   * QEMU's locks for each file opened, by the layer's depth (0: the top image) and format; taken on files that can
   * lock (`BlockFile.lock`). Undefined: no locks.
   */
  locks?: ImageLocks;
}

export interface ImageLocks {
  /** `writable`: the layer opens for writing (the top, or a layer `writableLayer` chose). */
  image(depth: number, format: string, writable: boolean): LockPermissions;
  dataFile(depth: number): LockPermissions;
}

/**
 * Opens the image called `name` in `options.store` with its whole backing chain: raw files as RawDisk, qcow2
 * images through the engine, every backing and data file through the same store (so a local overlay can sit on a
 * backing file on a web server). A chain that loops or runs deeper than the limit is a clear error.
 */
export async function openImage(name: string, options: OpenImageOptions): Promise<BlockDevice> {
  const { store } = options;
  let depth = 0;
  return openChain(name, options.format, {
    maxDepth: options.maxBackingDepth,
    probeBacking: options.probeBacking,
    admit: options.admit,
    identify: (layer) => store.identify(layer),
    resolve: (base, named) => store.resolve(base, named),
    openLayer: async (layer, format, openBacking) => {
      const layerDepth = depth++;
      return openLayer(layer, format, openBacking, layerDepth, options);
    },
  });
}

async function openLayer(
  name: string,
  format: string | undefined,
  openBacking: BackingOpener,
  depth: number,
  options: OpenImageOptions,
): Promise<BlockDevice> {
  const isTop = depth === 0;
  const writable = isTop ? options.writable === true : (await options.writableLayer?.(name, depth)) === true;
  const file = await options.store.open(name, { writable });
  try {
    const chosen = format ?? (await probeFormat(file));
    if (chosen === 'qcow') throw new DiskError('E_UNSUPPORTED', 'Unsupported qcow version 1 (the format before qcow2)', { file: name });
    if (chosen !== 'raw' && chosen !== 'qcow2') throw new DiskError('E_UNSUPPORTED', `Unknown or unsupported format '${chosen}'`, { file: name });
    // As QEMU: probe first, then lock by what the format needs (a qcow2 file refuses writers, a raw one may not).
    if (options.locks !== undefined && file.lock !== undefined) await file.lock(options.locks.image(depth, chosen, writable));
    const snapshot = isTop ? options.snapshot : depth === 1 ? options.backingSnapshot : undefined;
    if (chosen === 'raw') {
      if (snapshot !== undefined) throw new DiskError('E_UNSUPPORTED', 'raw images have no snapshots', { file: name });
      // A guessed raw format restricts writes to the first sector (RawDisk.write), as QEMU does.
      return await RawDisk.open(file, { name, probed: format === undefined });
    }
    return await Qcow2Image.open(file, {
      name: isTop ? (options.displayName ?? name) : name,
      writable,
      codecs: options.codecs,
      openBacking,
      ignoreBacking: options.ignoreBacking,
      snapshot,
      l2CacheBytes: options.l2CacheBytes,
      openDataFile: async (named, dataWritable) => {
        const dataName = options.resolveDataFile === undefined ? options.store.resolve(name, named) : await options.resolveDataFile(name, named);
        await options.admit?.(dataName, named, name);
        const dataFile = await options.store.open(dataName, { writable: dataWritable });
        try {
          if (options.locks !== undefined && dataFile.lock !== undefined) await dataFile.lock(options.locks.dataFile(depth));
        } catch (error) {
          await dataFile.close().catch(() => undefined);
          throw error;
        }
        return dataFile;
      },
      limits: options.limits,
      repairDirty: options.repairDirty === undefined ? undefined : (dirty) => options.repairDirty!(dirty, name),
    });
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}
