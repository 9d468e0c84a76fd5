/**
 * Where a backing file named `backingName` lives, for an image at `imagePath`, by QEMU's rule: an absolute name
 * (or one with a protocol prefix such as `nbd:`) stands as is; a relative one is relative to the directory of the
 * image that names it, not to the current directory. POSIX paths, no `node:path`, so it runs in a browser too.
 */
export function resolveBackingPath(imagePath: string, backingName: string): string {
  if (backingName.startsWith('/') || hasProtocol(backingName)) return backingName;
  const slash = imagePath.lastIndexOf('/');
  if (slash < 0) return backingName;
  return imagePath.slice(0, slash + 1) + backingName;
}

/** `nbd://host/x`, `json:{...}`: a protocol QEMU would hand to a driver instead of the file system. */
export function hasProtocol(name: string): boolean {
  const colon = name.indexOf(':');
  if (colon <= 0) return false;
  const slash = name.indexOf('/');
  return slash < 0 || colon < slash;
}
