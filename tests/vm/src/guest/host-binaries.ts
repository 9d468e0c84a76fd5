import { readFileSync, realpathSync } from 'node:fs';
import { runOk } from '@q/test-support';
import type { CpioEntry } from './cpio.js';

/**
 * Host programs copied into the guest with the shared libraries they load: busybox has no e2fsck, and the host's
 * e2fsck is the one whose verdict the host side repeats, so the guest runs that very binary. The guest and host
 * are both x86-64 Linux, so a glibc program runs there once its libraries and its loader sit at the paths it was
 * linked against (what ldd prints).
 */
export function hostBinaryEntries(programs: readonly string[]): CpioEntry[] {
  const files = new Map<string, string>();
  for (const program of programs) {
    const path = runOk('sh', ['-c', `command -v ${program}`]).trim();
    if (path === '') throw new Error(`${program} is not installed on the host (e2fsprogs)`);
    files.set(`/bin/${program}`, path);
    for (const library of sharedLibraries(path)) files.set(library, library);
  }
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  for (const [guestPath, hostPath] of files) {
    for (let dir = parent(guestPath); dir !== '/' && !dirs.has(dir); dir = parent(dir)) dirs.add(dir);
    // Libraries are usually symlinks (libext2fs.so.2 -> libext2fs.so.2.4): the guest gets the resolved file's bytes.
    entries.push({ kind: 'file', path: guestPath, data: readFileSync(realpathSync(hostPath)), mode: 0o755 });
  }
  const dirEntries: CpioEntry[] = [...dirs].sort((a, b) => a.length - b.length).map((path) => ({ kind: 'dir', path }));
  return [...dirEntries, ...entries];
}

/** The absolute paths ldd names for a dynamically linked program (its loader included); none for a static one. */
function sharedLibraries(program: string): string[] {
  const out = runOk('ldd', [program]);
  if (/not a dynamic executable|statically linked/.test(out)) return [];
  const libraries: string[] = [];
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (match?.[1]) libraries.push(match[1]);
    else if (/not found/.test(line)) throw new Error(`${program}: ${line.trim()}`);
  }
  return libraries;
}

function parent(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}
