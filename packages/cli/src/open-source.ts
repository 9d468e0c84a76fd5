import { openDisk, type OpenDiskOptions } from '@q/vkd';
import type { BlockDevice } from '@q/raw';
import { UsageError } from './usage-error.js';

const FORMATS = new Set(['qcow2', 'raw']);

/** Opens a file named on the command line (read-only unless asked), checking a `-f` value first. */
export async function openImage(spec: string, options: OpenDiskOptions = {}): Promise<BlockDevice> {
  if (options.format !== undefined && !FORMATS.has(options.format)) {
    throw new UsageError(`Unknown file format '${options.format}'`);
  }
  return openDisk(spec, options);
}

/**
 * Parses qemu-img's `-l` value: `snapshot.name=S`, `snapshot.id=I` (comma separated, both allowed), or a bare
 * id or name (matched as `-s` matches: id first).
 */
export function parseSnapshotParam(text: string): string | { id?: string; name?: string } {
  if (!text.includes('=')) return text;
  const key: { id?: string; name?: string } = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const field = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (field === 'snapshot.name') key.name = value;
    else if (field === 'snapshot.id') key.id = value;
    else throw new UsageError(`Invalid snapshot parameter '${part}' (expected snapshot.name= or snapshot.id=)`);
  }
  return key;
}
