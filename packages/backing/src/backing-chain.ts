import { DiskError, isDiskError, type BlockDevice } from '@q/raw';
import { resolveBackingPath } from './backing-path.js';

/** Opens the backing file an image names; the image's engine calls it while it opens. */
export type BackingOpener = (backingName: string, format: string | undefined) => Promise<BlockDevice>;

export interface ChainOptions {
  /**
   * Opens one layer at `path`. `format` is what the overlay recorded (undefined: probe). The layer opens its own
   * backing file, if it names one, through `openBacking`, which enforces the chain's rules.
   */
  openLayer(path: string, format: string | undefined, openBacking: BackingOpener): Promise<BlockDevice>;
  /** A stable identity for a path (its real path) to detect loops through different names; default: the path. */
  identify?(path: string): Promise<string>;
  /**
   * The name of the backing file that the layer `path` records as `backingName` (a store's `resolve`); default:
   * QEMU's rule for file names (relative to the layer's directory). Names with a protocol are the store's to open.
   */
  resolve?(path: string, backingName: string): string;
  /** Most layers below the top image; default 64. */
  maxDepth?: number;
  /**
   * Checks a backing file before it is opened (`path` resolved, `named` as the overlay records it); throws to
   * refuse it. Untrusted images use it to keep the chain inside the image's directory.
   */
  admit?(path: string, named: string, overlay: string): Promise<void>;
  /**
   * Whether a backing file whose format the overlay does not record may be probed (default true, as QEMU). An
   * untrusted image must record it: a guest-written raw disk could otherwise pass for a qcow2 image.
   */
  probeBacking?: boolean;
}

export const DEFAULT_MAX_DEPTH = 64;

/**
 * Opens the image at `path` and its whole backing chain. Unlike QEMU, which hangs on a chain that loops back on
 * itself, a loop or a chain deeper than `maxDepth` is a clear error naming the file that closes it.
 */
export async function openChain(path: string, format: string | undefined, options: ChainOptions): Promise<BlockDevice> {
  const identify = options.identify ?? (async (p: string) => p);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const seen: string[] = [];

  const open = async (layerPath: string, layerFormat: string | undefined, depth: number): Promise<BlockDevice> => {
    const identity = await identify(layerPath);
    if (seen.includes(identity)) {
      const same = identity === layerPath ? '' : ` (which is '${identity}')`;
      throw new DiskError('E_BACKING_CHAIN', `backing chain loops: '${layerPath}'${same} is already in the chain above it`, { file: layerPath });
    }
    seen.push(identity);
    const openBacking: BackingOpener = async (backingName, backingFormat) => {
      if (depth + 1 > maxDepth) {
        throw new DiskError('E_BACKING_CHAIN', `backing chain is deeper than ${maxDepth} layers`, { file: layerPath });
      }
      if (backingFormat === undefined && options.probeBacking === false) {
        throw new DiskError('E_UNSUPPORTED', `backing file '${backingName}' has no recorded format, and untrusted images are never probed`, {
          file: layerPath,
        });
      }
      const backingPath = (options.resolve ?? resolveBackingPath)(layerPath, backingName);
      await options.admit?.(backingPath, backingName, layerPath);
      try {
        return await open(backingPath, backingFormat, depth + 1);
      } catch (error) {
        if (isDiskError(error) && error.code === 'E_LOCKED' && error.file === backingPath) {
          // qemu-img's wording: "Could not open 'top': Could not open backing file: Failed to get ... lock".
          throw new DiskError('E_LOCKED', `Could not open backing file: ${error.message}`, { file: layerPath, cause: error });
        }
        // Any other failure of the backing file itself (missing, a header its format refuses, a failure further
        // down, already wrapped by that layer) is this layer's failure to open, naming both, as QEMU words it. A
        // loop or a chain too deep is the chain's failure, named where it was found, and stays as it is.
        if (isDiskError(error) && error.file === backingPath && error.code !== 'E_BACKING_CHAIN') {
          throw new DiskError(error.code, `Could not open backing file '${backingPath}': ${error.message}`, {
            file: layerPath,
            cause: error,
            reason: 'backing-open',
          });
        }
        throw error;
      }
    };
    return options.openLayer(layerPath, layerFormat, openBacking);
  };

  return open(path, format, 0);
}
