import { createRequire } from 'node:module';

/** The lock modes of flock(2). */
export type LockMode = 'shared' | 'exclusive' | 'unlock';

interface Addon {
  flock(fd: number, mode: number): number;
}

const MODES: Record<LockMode, number> = { unlock: 0, shared: 1, exclusive: 2 };
/** Linux EWOULDBLOCK (= EAGAIN): another open file description holds a conflicting lock. */
const EWOULDBLOCK = 11;

let addon: Addon | null | undefined;

/** The addon built at install (build/Release/flock.node), or null where it could not be built or loaded. */
function load(): Addon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('../build/Release/flock.node') as Addon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** Whether locks can be taken here (the addon loaded). */
export function flockAvailable(): boolean {
  return load() !== null;
}

/**
 * Takes (or drops) a flock(2) lock on an open file without waiting. Returns true when held, false when another
 * open file description holds a conflicting one. Locks belong to the open file description: they go when the
 * descriptor is closed or the process ends, however it ends. Where the addon is missing it does nothing and
 * returns true (flockAvailable tells). Other failures (a bad descriptor) throw.
 */
export function flock(fd: number, mode: LockMode): boolean {
  const native = load();
  if (native === null) return true;
  const errno = native.flock(fd, MODES[mode]);
  if (errno === 0) return true;
  if (errno === EWOULDBLOCK) return false;
  throw new Error(`flock failed (errno ${errno})`);
}
