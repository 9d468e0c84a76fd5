import { writeFile } from 'node:fs/promises';
import { systemErrorText } from '../describe-error.js';
import { ExitError } from '../usage-error.js';

/**
 * `--pid-file`: the serving process's pid and a newline, written before it listens, so it is there once the server answers (mode 0600, as qemu-nbd). Like
 * qemu-nbd 7.2 the file stays after the server exits; scripts remove it.
 */
export async function writePidFile(path: string): Promise<void> {
  try {
    await writeFile(path, `${process.pid}\n`, { mode: 0o600 });
  } catch (error) {
    throw new ExitError(`Could not create '${path}': ${systemErrorText(error)}`, 1);
  }
}
