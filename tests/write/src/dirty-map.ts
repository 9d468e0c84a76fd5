import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { qemuImg, requireTool } from '@q/test-support';

/**
 * The dirty map of bitmap `bitmap` in `image` as QEMU reports it: qemu-nbd exports the image with `-B NAME` and
 * `qemu-img map` reads the `qemu:dirty-bitmap:NAME` context (x-dirty-bitmap: "data": false marks dirty runs).
 * The map of our written image must equal the map of QEMU's twin, byte for byte.
 */
export async function dirtyMap(image: string, bitmap: string, socket: string): Promise<string> {
  requireTool('qemu-nbd');
  const server = spawn('qemu-nbd', ['-r', '-f', 'qcow2', '-k', socket, '-B', bitmap, '-t', image], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) {
      if (server.exitCode !== null) throw new Error(`qemu-nbd -B ${bitmap} ${image} exited ${server.exitCode}: ${stderr.trim()}`);
      await sleep(50);
    }
    const opts = `driver=nbd,server.type=unix,server.path=${socket},x-dirty-bitmap=qemu:dirty-bitmap:${bitmap}`;
    return qemuImg(['map', '--output=json', '--image-opts', opts]);
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
}
