/** A disk as the user names it: a file, and optionally an internal snapshot of it. */
export interface DiskSpec {
  path: string;
  snapshot?: string;
}

/**
 * Parses `FILE` or `FILE@SNAP`. A name that exists as a file is always a file, even with an `@` in it; otherwise
 * the text after the last `@` names a snapshot of the file before it (as in the vkernel disk syntax). Text after
 * the `@` with a `/` in it is part of a name (`https://user@host/disk.qcow2`, `dir@2/disk`), not a snapshot.
 */
export function parseDiskSpec(spec: string, fileExists: (path: string) => boolean): DiskSpec {
  const at = spec.lastIndexOf('@');
  if (at <= 0 || at === spec.length - 1 || spec.includes('/', at) || fileExists(spec)) return { path: spec };
  return { path: spec.slice(0, at), snapshot: spec.slice(at + 1) };
}
