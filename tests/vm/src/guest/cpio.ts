/**
 * A writer of "newc" cpio archives, the format the Linux kernel unpacks as its initramfs. Written here rather than
 * run through cpio(1) so that device nodes (the guest's /dev/console) go into the archive without root's mknod,
 * and so that file modes and owners do not depend on the host's files.
 *
 * Each entry is a 110-byte ASCII header ("070701" and thirteen 8-digit hex fields), the NUL-terminated name padded
 * to a 4-byte boundary, then the data padded likewise; an entry named TRAILER!!! ends the archive.
 */

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array | string; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'char'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** The archive's bytes, entries in the order given (a directory must come before what it holds). */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let inode = 1;
  let length = 0;
  const push = (buffer: Buffer): void => {
    parts.push(buffer);
    length += buffer.length;
  };
  const pad = (): void => {
    if (length % 4 !== 0) push(Buffer.alloc(4 - (length % 4)));
  };
  const entry = (name: string, mode: number, data: Buffer, rdev: { major: number; minor: number } = { major: 0, minor: 0 }): void => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const fields = [
      inode++,
      mode,
      0, // uid: root
      0, // gid: root
      mode & S_IFDIR ? 2 : 1,
      0, // mtime: fixed, so that the same inputs give the same archive
      data.length,
      0,
      0,
      rdev.major,
      rdev.minor,
      nameBytes.length,
      0, // checksum: only the "070702" variant has one
    ];
    push(Buffer.from(`070701${fields.map((field) => field.toString(16).padStart(8, '0')).join('')}`, 'ascii'));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };
  for (const item of entries) {
    // The kernel wants names relative to the archive's root, without a leading slash.
    const name = item.path.replace(/^\/+/, '');
    switch (item.kind) {
      case 'dir':
        entry(name, S_IFDIR | (item.mode ?? 0o755), Buffer.alloc(0));
        break;
      case 'file':
        entry(name, S_IFREG | (item.mode ?? 0o644), typeof item.data === 'string' ? Buffer.from(item.data, 'utf8') : Buffer.from(item.data));
        break;
      case 'symlink':
        entry(name, S_IFLNK | 0o777, Buffer.from(item.target, 'utf8'));
        break;
      case 'char':
        entry(name, S_IFCHR | (item.mode ?? 0o600), Buffer.alloc(0), { major: item.major, minor: item.minor });
        break;
    }
  }
  entry('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts, length);
}
