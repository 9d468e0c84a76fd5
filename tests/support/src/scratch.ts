import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuImg } from './tools.js';

/** A temporary directory removed by `cleanup()`; `path(name)` joins names into it. */
export interface Scratch {
  dir: string;
  path(name: string): string;
  cleanup(): void;
}

/** A fresh temporary directory (under QCOW_TEST_TMP, else /dev/shm when present, else the OS temp dir). */
export function scratch(prefix = 'qcow-test-'): Scratch {
  const base = process.env['QCOW_TEST_TMP'] ?? (process.platform === 'linux' ? '/dev/shm' : tmpdir());
  const dir = mkdtempSync(join(base, prefix));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** SHA-256 of a file, streamed (images can be large). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The guest bytes of an image as QEMU reads them: `qemu-img convert -O raw` into `out`. */
export function qemuRaw(image: string, out: string, extra: readonly string[] = []): string {
  qemuImg(['convert', ...extra, '-O', 'raw', image, out]);
  return out;
}
