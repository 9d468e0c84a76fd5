/**
 * Names as QEMU reads them, in POSIX form and without `node:path`, so they work in a browser too.
 *
 * `nbd://host/x`, `https://...`, `json:{...}`: a name with a protocol prefix, which QEMU hands to a driver instead
 * of the file system. A colon after the first slash (`dir/a:b`) is part of a file name.
 */
export function hasProtocol(name: string): boolean {
  return protocolOf(name) !== undefined;
}

/** The protocol of `name` (`https`, `nbd+unix`), lower-cased; undefined for a file name. */
export function protocolOf(name: string): string | undefined {
  const colon = name.indexOf(':');
  if (colon <= 0) return undefined;
  const slash = name.indexOf('/');
  if (slash >= 0 && slash < colon) return undefined;
  const scheme = name.slice(0, colon);
  // RFC 3986 scheme characters; anything else (`my file:1`) is a file name.
  return /^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme) ? scheme.toLowerCase() : undefined;
}

/**
 * Where a file that `base` records as `name` lives, for file names: an absolute name (or one with a protocol)
 * stands as is; a relative one is relative to the directory of `base`, not to the current directory.
 */
export function resolveFileName(base: string, name: string): string {
  if (name.startsWith('/') || hasProtocol(name)) return name;
  const slash = base.lastIndexOf('/');
  if (slash < 0) return name;
  return base.slice(0, slash + 1) + name;
}
