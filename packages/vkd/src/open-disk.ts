import { realpath } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { openChain, probeFormat, resolveBackingPath, type BackingOpener } from '@q/backing';
import { Qcow2Image, type Codecs } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { checkImage } from '@q/check';
import { DiskError, RawDisk, type BlockDevice, type BlockFile } from '@q/raw';
import { openNodeFile, type LockPermissions } from '@q/raw/node';
import { BACKING_USER, dataFileLocks, imageFileLocks, toolUser } from './lock-model.js';
import { openCowOverlay } from './cow-overlay.js';
import { parseDiskSpec } from './disk-spec.js';
import { untrustedPolicy, type UntrustedPolicy } from './untrusted.js';

export type DiskFormat = 'qcow2' | 'raw';

export interface OpenDiskOptions {
  /** Open the top image for writing (backing files always open read-only). */
  writable?: boolean;
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
   * `'always'` for a cothread worker (every request, whatever its size).
   */
  blockingIo?: boolean | 'memory' | 'always';
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
}

/**
 * Opens a disk spec (`FILE` or `FILE@SNAP`) with its whole backing chain, from the local file system: read-only
 * unless `writable` (backing files and snapshots are always read-only).
 * Raw files open as RawDisk (no layers in between); qcow2 images through the engine.
 */
export async function openDisk(spec: string, options: OpenDiskOptions = {}): Promise<BlockDevice> {
  const parsed = parseDiskSpec(spec, exists);
  if (options.forceShare === true && (options.writable === true || options.cow === true)) {
    throw new DiskError('E_INVALID', 'force-share=on can only be used with read-only images');
  }
  const snapshot = options.snapshot ?? parsed.snapshot;
  // The policy is fixed by the image the user named, before a cow overlay (in the temp dir) sits on top of it.
  const policy = options.untrusted === true ? await untrustedPolicy(parsed.path) : undefined;
  if (options.cow === true) {
    // The overlay's backing file is the image; with FILE@SNAP the engine opens that layer at the snapshot (a
    // backing file name cannot say so), and the overlay takes the snapshot's size.
    const { cow: _cow, snapshot: _snapshot, ...rest } = options;
    const base = await openDisk(parsed.path, { ...rest, snapshot, writable: false, ignoreBacking: true });
    const shape = { path: parsed.path, size: base.size, format: base.format };
    await base.close();
    return openCowOverlay(shape, (overlay) =>
      openSpecChain(overlay, { ...rest, format: 'qcow2', writable: true, ignoreBacking: false }, { backing: snapshot }, policy),
    );
  }
  return openSpecChain(spec, options, { top: snapshot }, policy);
}

/** Opens `spec` and its chain, the top layer at `snapshots.top` and the one below at `snapshots.backing` (cow). */
async function openSpecChain(
  spec: string,
  options: Omit<OpenDiskOptions, 'cow' | 'snapshot'>,
  snapshots: { top?: OpenDiskOptions['snapshot']; backing?: OpenDiskOptions['snapshot'] },
  policy: UntrustedPolicy | undefined,
): Promise<BlockDevice> {
  const parsed = parseDiskSpec(spec, exists);
  const codecs = options.codecs ?? nodeCodecs();
  let depth = 0;
  return openChain(parsed.path, options.format, {
    maxDepth: policy === undefined ? options.maxBackingDepth : Math.min(options.maxBackingDepth ?? Infinity, policy.maxBackingDepth),
    probeBacking: policy === undefined,
    admit: policy?.admit,
    identify: async (path) => realpath(path).catch(() => path),
    openLayer: async (path, format, openBacking) => {
      const isTop = depth === 0;
      const layerSnapshot = isTop ? snapshots.top : depth === 1 ? snapshots.backing : undefined;
      depth++;
      return openLayer(path, format, openBacking, {
        codecs,
        snapshot: layerSnapshot,
        name: isTop && parsed.snapshot !== undefined ? spec : path,
        writable: isTop && options.writable === true,
        ignoreBacking: options.ignoreBacking === true,
        l2CacheBytes: options.l2CacheBytes,
        blocking: options.blockingIo ?? false,
        locks: options.locking === false ? undefined : layerLocks(isTop, options),
        policy,
      });
    },
  });
}

interface LayerOptions {
  writable: boolean;
  codecs: Codecs;
  snapshot: string | { id?: string; name?: string } | undefined;
  name: string;
  ignoreBacking: boolean;
  l2CacheBytes: number | undefined;
  blocking: boolean | 'memory' | 'always';
  /** QEMU's locks for this layer, by its format (known once probed); undefined: no locks. */
  locks: LayerLocks | undefined;
  policy: UntrustedPolicy | undefined;
}

interface LayerLocks {
  image(format: string): LockPermissions;
  dataFile: LockPermissions;
}

/** The top layer serves the disk's user; a backing layer serves the overlay above it (lock-model.ts). */
function layerLocks(isTop: boolean, options: OpenDiskOptions): LayerLocks {
  const writable = isTop && options.writable === true;
  const forceShare = options.forceShare === true;
  const user = isTop ? (options.lockUser ?? toolUser(writable)) : BACKING_USER;
  return { image: (format) => imageFileLocks(format, user, writable, forceShare), dataFile: dataFileLocks(writable, forceShare) };
}

async function openLayer(path: string, format: string | undefined, openBacking: BackingOpener, options: LayerOptions): Promise<BlockDevice> {
  const file = await openNodeFile(path, { writable: options.writable, blocking: options.blocking });
  try {
    const chosen = format ?? (await probeFormat(file));
    // As QEMU: probe first, then lock by what the format needs (a qcow2 file refuses writers, a raw one may not).
    if (options.locks !== undefined) file.lock(options.locks.image(chosen));
    if (chosen === 'raw') {
      if (options.snapshot !== undefined) throw new DiskError('E_UNSUPPORTED', 'raw images have no snapshots', { file: path });
      return await RawDisk.open(file, { name: path });
    }
    if (chosen !== 'qcow2') throw new DiskError('E_UNSUPPORTED', `Unknown or unsupported format '${chosen}'`, { file: path });
    return await Qcow2Image.open(file, {
      name: options.name,
      writable: options.writable,
      codecs: options.codecs,
      openBacking,
      ignoreBacking: options.ignoreBacking,
      snapshot: options.snapshot,
      l2CacheBytes: options.l2CacheBytes,
      openDataFile: async (name, writable) => {
        const dataPath = options.policy === undefined ? dataFilePath(path, name) : resolveBackingPath(path, name);
        await options.policy?.admit(dataPath, name, path);
        return openNodeFile(dataPath, { writable, blocking: options.blocking, lock: options.locks?.dataFile });
      },
      limits: options.policy?.limits,
      repairDirty: (dirty) => repairDirtyImage(dirty, path),
    });
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

/** QEMU's answer to a dirty image opened read-write: rebuild the refcounts (check -r all), then go on. */
async function repairDirtyImage(file: BlockFile, path: string): Promise<void> {
  const report = await checkImage(file, { repair: 'all', name: path });
  if (report.corruptions > 0 || report.checkErrors > 0) {
    throw new DiskError('E_CORRUPT', 'the image is dirty and repairing its refcounts left errors: run qcow check', { file: path });
  }
}

/**
 * QEMU opens a relative data file name relative to the current directory, which breaks as soon as one runs it
 * from elsewhere. We look next to the image first (as for backing files) and fall back to QEMU's reading.
 */
function dataFilePath(imagePath: string, name: string): string {
  const besideImage = resolveBackingPath(imagePath, name);
  return exists(besideImage) || !exists(name) ? besideImage : name;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
