import { hasProtocol, resolveFileName } from '@q/raw';

/**
 * Where a backing file named `backingName` lives, for an image at `imagePath`, by QEMU's rule: an absolute name
 * (or one with a protocol prefix such as `nbd:`) stands as is; a relative one is relative to the directory of the
 * image that names it, not to the current directory. (A store's `resolve` says the same for its own names.)
 */
export function resolveBackingPath(imagePath: string, backingName: string): string {
  return resolveFileName(imagePath, backingName);
}

export { hasProtocol };
