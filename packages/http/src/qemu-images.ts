import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BlockDevice } from '@q/raw';

/**
 * Images made by qemu-img and qemu-io for the tests (Node only, never built): the oracles are QEMU's own tools,
 * and a missing tool fails the test. Commands run asynchronously so nginx and test proxies keep being served.
 */
export function run(command: string, args: readonly string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resolve(stdout);
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new Error(missing ? `required test oracle '${command}' is not installed (apt-get install qemu-utils)` : `${command} ${args.join(' ')} failed: ${stderr.trim() || stdout.trim()}`));
    });
  });
}

/** The images every image test reads, by file name in `dir`. */
export const IMAGES = ['plain.qcow2', 'zlib.qcow2', 'zstd.qcow2', 'base.qcow2', 'mid.qcow2', 'top.qcow2'] as const;

/**
 * Writes the test images into `dir`: plain (data written by qemu-io), compressed with zlib and with zstd, and a
 * chain base <- mid <- top recorded with relative backing names (made in `dir`, so the names are bare).
 */
export async function makeImages(dir: string): Promise<void> {
  const img = (...args: string[]): Promise<string> => run('qemu-img', args, dir);
  const io = (image: string, ...commands: string[]): Promise<string> =>
    run('qemu-io', ['-f', 'qcow2', ...commands.flatMap((command) => ['-c', command]), image], dir);
  await img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '4M');
  await io('plain.qcow2', 'write -P 0x5a 0 1M', 'write -P 0xa5 2M 512k', 'write -P 0x3c 3M 4k');
  await img('convert', '-c', '-O', 'qcow2', 'plain.qcow2', 'zlib.qcow2');
  await img('convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', 'plain.qcow2', 'zstd.qcow2');
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '4M');
  await io('base.qcow2', 'write -P 0x11 0 2M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2');
  await io('mid.qcow2', 'write -P 0x22 1M 1M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2');
  await io('top.qcow2', 'write -P 0x33 1536k 256k', 'write -z 3M 64k');
}

/** The guest bytes of `image` (relative to `dir`) as QEMU reads them (`qemu-img convert -O raw`), via `out`. */
export async function qemuGuestBytes(dir: string, image: string, out = join(dir, `${basename(image)}.raw`)): Promise<Uint8Array> {
  await run('qemu-img', ['convert', '-O', 'raw', image, out], dir);
  return new Uint8Array(await readFile(out));
}

/** Every guest byte of an open device, read in 256 KiB requests as a copy tool would. */
export async function deviceBytes(device: BlockDevice): Promise<Uint8Array> {
  const bytes = new Uint8Array(device.size);
  const chunk = 256 * 1024;
  for (let offset = 0; offset < device.size; offset += chunk) {
    await device.read(bytes.subarray(offset, Math.min(device.size, offset + chunk)), offset);
  }
  return bytes;
}
