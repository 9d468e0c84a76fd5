import { readFileSync, statSync } from 'node:fs';

/**
 * The OFD lock ranges held on `path` by anyone, as /proc/locks shows them ("100-101", "201", ...), sorted and
 * without repeats (two readers holding byte 100 show it once). What QEMU holds is observable only this way.
 */
export function lockedBytes(path: string): string[] {
  const inode = statSync(path).ino;
  const ranges = new Set<string>();
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    if (!line.includes(`:${inode} `) || !line.includes('OFDLCK')) continue;
    const fields = line.trim().split(/\s+/);
    const [start, end] = [fields[fields.length - 2]!, fields[fields.length - 1]!];
    ranges.add(start === end ? start : `${start}-${end}`);
  }
  return [...ranges].sort();
}

/** Waits until the locks on `path` are exactly `expected` (a holder has opened it); throws when it dies or after `ms`. */
export async function waitForLocks(path: string, expected: readonly string[], alive: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the holder exited before it locked');
    seen = lockedBytes(path);
    if (seen.join() === [...expected].sort().join()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`locks on ${path}: expected [${expected.join(', ')}], saw [${seen.join(', ')}]`);
}
