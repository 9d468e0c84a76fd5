import { openImage, type Codecs, type ImageLocks } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { DiskError, type BlockDevice, type BlockFile, type BlockStore, type LockPermissions } from '@q/raw';
import { defaultStore } from './default-store.js';
import { BACKING_USER, dataFileLocks, imageFileLocks, toolUser } from './lock-model.js';
import { openCowOverlay } from './cow-overlay.js';
import { parseDiskSpec, type DiskSpec } from './disk-spec.js';
import { untrustedPolicy, type UntrustedPolicy } from './untrusted.js';

export type DiskFormat = 'qcow2' | 'raw';

export interface OpenDiskOptions {
  /** Open the top image for writing (backing files open read-only unless `writableLayer` says otherwise). */
  writable?: boolean;
  /** Also open this backing layer for writing (by resolved name and depth, 1 = the top's backing file): commit's base. */
  writableLayer?(name: string, depth: number): boolean | Promise<boolean>;
  /** Force the format of the top image (`-f`); default: probe by magic (qcow2, else raw). */
  format?: string;
  /** A snapshot of the top image, in addition to or instead of `FILE@SNAP` in the spec. */
  snapshot?: string | { id?: string; name?: string };
  /** Do not open backing files (unallocated ranges read as zeros): `qemu-img info`, `-u`. */
  ignoreBacking?: boolean;
  /** Most backing layers below the top image. */
  maxBackingDepth?: number;
  l2CacheBytes?: number;
  /**
   * Cow mode: writable, but writes stay in a temporary overlay (removed with the process) and the image file never
   * changes. With a snapshot (`FILE@SNAP`) the disk starts from the snapshot.
   */
  cow?: boolean;
  /**
   * Blocking file I/O on this thread (see `NodeFileOptions.blocking`): `true` for CLIs and cothread workers,
   * `'memory'` for an event loop serving clients (blocking only for files in memory, which never wait for a device),
   * `'always'` for a cothread worker (every request, whatever its size), `'nowait'` for an event loop serving clients
   * from files anywhere (blocking only where a call does not wait for a device: files in memory, page-cache hits).
   */
  blockingIo?: boolean | 'memory' | 'always' | 'nowait';
  /**
   * Read beside a writer (`-U`, QEMU's force-share): take only the "consistent read" lock, refuse nothing to
   * others. Only for read-only opens: what is read may change underneath.
   */
  forceShare?: boolean;
  /**
   * Take QEMU's image locks on every file opened (default true): a writer excludes every other writer and
   * reader, readers exclude writers, in QEMU processes as in ours. false: no locks (QEMU's `file.locking=off`).
   */
  locking?: boolean;
  /**
   * What the disk's user needs and refuses to share, as QEMU's permissions (lock-model.ts): default read (and
   * write when writable), refusing nothing, as qemu-io. An NBD export refuses resize; `qemu-img info` needs nothing.
   */
  lockUser?: LockPermissions;
  /**
   * The image comes from someone untrusted (untrusted.ts says what is guaranteed): its chain and data file must
   * stay in its directory, backing files are never probed, URLs are refused, metadata limits are tighter.
   */
  untrusted?: boolean;
  codecs?: Codecs;
  /**
   * Where names are opened (the image, its backing files, its data file); default: local files, `http(s)://`
   * URLs and `nbd://` exports (`defaultStore`). Bring your own to open images from anywhere.
   */
  store?: BlockStore;
}

/**
 * Opens a disk spec (`FILE` or `FILE@SNAP`) with its whole backing chain, through `options.store` (local files,
 * URLs and NBD exports by default): read-only unless `writable` (backing files and snapshots are always read-only).
 * Raw files open as RawDisk (no layers in between); qcow2 images through the engine.
 */
export async function openDisk(spec: string, options: OpenDiskOptions = {}): Promise<BlockDevice> {
  const store = options.store ?? defaultStore({ blocking: options.blockingIo ?? false });
  const parsed = await parseDiskSpecIn(store, spec);
  if (options.forceShare === true && (options.writable === true || options.cow === true)) {
    throw new DiskError('E_INVALID', 'force-share=on can only be used with read-only images');
  }
  const snapshot = options.snapshot ?? parsed.snapshot;
  // The policy is fixed by the image the user named, before a cow overlay (in the temp dir) sits on top of it.
  const policy = options.untrusted === true ? await untrustedPolicy(parsed.path, store) : undefined;
  if (options.cow === true) {
    // The overlay's backing file is the image; with FILE@SNAP the engine opens that layer at the snapshot (a
    // backing file name cannot say so), and the overlay takes the snapshot's size.
    const { cow: _cow, snapshot: _snapshot, ...rest } = options;
    const base = await openDisk(parsed.path, { ...rest, store, snapshot, writable: false, ignoreBacking: true });
    const shape = { path: await store.identify(parsed.path), size: base.size, format: base.format };
    await base.close();
    return openCowOverlay(shape, store, (overlay, overlayStore) =>
      openChainOf(overlay, overlayStore, { ...rest, format: 'qcow2', writable: true, ignoreBacking: false }, { backing: snapshot }, policy),
    );
  }
  return openChainOf(parsed.path, store, options, { top: snapshot, displayName: parsed.snapshot !== undefined ? spec : undefined }, policy);
}

/** `FILE@SNAP` against a store: a name that exists is a file, even with an `@` in it. */
async function parseDiskSpecIn(store: BlockStore, spec: string): Promise<DiskSpec> {
  const exists = spec.includes('@') && (await store.exists(spec));
  return parseDiskSpec(spec, () => exists);
}

/** Opens `path` and its chain, the top layer at `at.top` and the one below at `at.backing` (cow). */
async function openChainOf(
  path: string,
  store: BlockStore,
  options: Omit<OpenDiskOptions, 'cow' | 'snapshot'>,
  at: { top?: OpenDiskOptions['snapshot']; backing?: OpenDiskOptions['snapshot']; displayName?: string },
  policy: UntrustedPolicy | undefined,
): Promise<BlockDevice> {
  return openImage(path, {
    store,
    writable: options.writable === true,
    writableLayer: options.writableLayer,
    format: options.format,
    snapshot: at.top,
    backingSnapshot: at.backing,
    displayName: at.displayName,
    ignoreBacking: options.ignoreBacking === true,
    maxBackingDepth: policy === undefined ? options.maxBackingDepth : Math.min(options.maxBackingDepth ?? Infinity, policy.maxBackingDepth),
    probeBacking: policy === undefined,
    admit: policy?.admit,
    resolveDataFile: policy === undefined ? (image, named) => dataFileName(store, image, named) : undefined,
    l2CacheBytes: options.l2CacheBytes,
    codecs: options.codecs ?? nodeCodecs(),
    limits: policy?.limits,
    repairDirty: repairDirtyImage,
    locks: options.locking === false ? undefined : layerLocks(options),
  });
}

/**
 * The top layer serves the disk's user; a backing layer serves the overlay above it (lock-model.ts), unless it was
 * opened for writing (commit's base): then it is a writer as a tool is.
 */
function layerLocks(options: OpenDiskOptions): ImageLocks {
  const forceShare = options.forceShare === true;
  const topWritable = options.writable === true;
  const user = (depth: number, writable: boolean): LockPermissions =>
    depth === 0 ? (options.lockUser ?? toolUser(topWritable)) : writable ? toolUser(true) : BACKING_USER;
  return {
    image: (depth, format, writable) => imageFileLocks(format, user(depth, writable), writable, forceShare),
    dataFile: (depth) => dataFileLocks(depth === 0 && topWritable, forceShare),
  };
}

/** QEMU's answer to a dirty image opened read-write: rebuild the refcounts (check -r all), then go on. */
async function repairDirtyImage(file: BlockFile, path: string): Promise<void> {
  // Imported only here: the checker is a large module that an open of a clean image (nearly every open) never runs.
  const { checkImage } = await import('@q/check');
  const report = await checkImage(file, { repair: 'all', name: path });
  if (report.corruptions > 0 || report.checkErrors > 0) {
    throw new DiskError('E_CORRUPT', 'the image is dirty and repairing its refcounts left errors: run qcow check', { file: path });
  }
}

/**
 * QEMU opens a relative data file name relative to the current directory, which breaks as soon as one runs it
 * from elsewhere. We look next to the image first (as for backing files) and fall back to QEMU's reading.
 */
async function dataFileName(store: BlockStore, image: string, named: string): Promise<string> {
  const besideImage = store.resolve(image, named);
  if (besideImage === named) return named;
  return (await store.exists(besideImage)) || !(await store.exists(named)) ? besideImage : named;
}
