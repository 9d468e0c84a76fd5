import { promises as fsp } from 'node:fs';

/**
 * Whether `path` is a Unix socket file that no process listens on any more: what a server killed before it could
 * remove its socket leaves behind. Only a socket whose connect is refused counts; a live server (the connect
 * succeeds), a regular file or anything we cannot probe is not stale, so it is never removed.
 */
export async function isStaleSocket(path: string): Promise<boolean> {
  const stats = await fsp.lstat(path).catch(() => undefined);
  if (stats === undefined || !stats.isSocket()) return false;
  // Imported here rather than with the module, which every process reaching @q/nbd/node loads.
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * Removes `path` when it is a stale socket (see isStaleSocket), so a server restarted after a crash can bind it
 * again, as qemu-nbd can. Returns whether it removed it.
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  if (!(await isStaleSocket(path))) return false;
  await fsp.unlink(path).catch((error: NodeJS.ErrnoException) => {
    // Another server starting at the same moment may have removed it first; that is the outcome we wanted.
    if (error.code !== 'ENOENT') throw error;
  });
  return true;
}
