import type { SnapshotEntry } from '@q/format';
import { DiskError } from '@q/raw';

/**
 * Finds a snapshot the way qemu-img does for `-s` and `FILE@SNAP`: an exact id match first, then a name match.
 * Returns undefined when neither matches.
 */
export function findSnapshot(entries: readonly SnapshotEntry[], idOrName: string): SnapshotEntry | undefined {
  return entries.find((entry) => entry.id === idOrName) ?? entries.find((entry) => entry.name === idOrName);
}

/** Finds a snapshot by one key only (`-l snapshot.id=`, `-l snapshot.name=`), or both when both are given. */
export function findSnapshotBy(entries: readonly SnapshotEntry[], key: { id?: string; name?: string }): SnapshotEntry | undefined {
  return entries.find(
    (entry) => (key.id === undefined || entry.id === key.id) && (key.name === undefined || entry.name === key.name),
  );
}

/** Like findSnapshot, but a missing snapshot is an E_NO_SUCH error naming the file. */
export function requireSnapshot(entries: readonly SnapshotEntry[], idOrName: string, file: string): SnapshotEntry {
  const entry = findSnapshot(entries, idOrName);
  if (entry === undefined) {
    throw new DiskError('E_NO_SUCH', `Can't find snapshot '${idOrName}'`, { file });
  }
  return entry;
}
