import { dirname, relative, isAbsolute } from 'node:path';
import { hasProtocol } from '@q/backing';
import { UNTRUSTED_LIMITS, type MetadataLimits } from '@q/format';
import { DiskError, type BlockStore } from '@q/raw';

/** Backing layers an untrusted image may have below it (QEMU has no limit; ours is 64 otherwise). */
export const UNTRUSTED_MAX_BACKING_DEPTH = 8;

/**
 * What `untrusted: true` guarantees for an image from someone else (a guest, a download): every file it opens
 * (backing files at any depth, external data files) lies inside the directory of the image the user named, after
 * symbolic links; names with a protocol (URLs, `nbd:`) are refused; backing files are opened with the format
 * the overlay records and never probed (a backing file without one is refused); metadata stays within
 * UNTRUSTED_LIMITS, the chain within UNTRUSTED_MAX_BACKING_DEPTH. The top image itself is still probed unless a
 * format is given: name `-f raw` for a disk a guest could write a qcow2 header into.
 */
export interface UntrustedPolicy {
  limits: MetadataLimits;
  maxBackingDepth: number;
  /** Throws unless `path` (a backing or data file of `image`) stays inside the confinement directory. */
  admit(path: string, named: string, image: string): Promise<void>;
}

/** The policy for an image at `imagePath`: its real directory is where the whole chain must stay. */
export async function untrustedPolicy(imagePath: string, store: BlockStore): Promise<UntrustedPolicy> {
  const root = dirname(await store.identify(imagePath));
  return {
    limits: UNTRUSTED_LIMITS,
    maxBackingDepth: UNTRUSTED_MAX_BACKING_DEPTH,
    admit: async (path, named, image) => {
      if (hasProtocol(named)) {
        throw new DiskError('E_UNSUPPORTED', `'${named}' names a protocol, which untrusted images may not use`, { file: image });
      }
      // Its identity in the store: the real path, after symbolic links (a missing file keeps its name, and its
      // open fails later if the name stays inside).
      const real = await store.identify(path);
      const inside = relative(root, real);
      if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
        throw new DiskError('E_UNSUPPORTED', `'${named}' lies outside the image's directory ${root}, where untrusted images must stay`, {
          file: image,
        });
      }
    },
  };
}
