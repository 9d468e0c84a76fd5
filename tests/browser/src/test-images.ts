import { join } from 'node:path';
import { qemuImg, qemuIo, qemuRaw, sha256File } from '@q/test-support';

/**
 * The images the page reads, made by qemu-img and qemu-io in one directory: plain (data written by qemu-io),
 * compressed with zlib and with zstd (so both portable decoders run in the browser), and a chain
 * base <- mid <- top recorded with bare relative backing names, which resolve against the image's URL over HTTP
 * and against the File's name in a BlobStore.
 */
export const IMAGES = ['plain.qcow2', 'zlib.qcow2', 'zstd.qcow2', 'top.qcow2'] as const;

/** Every file the page needs to open IMAGES: the chain's lower layers too. */
export const IMAGE_FILES = [...IMAGES, 'mid.qcow2', 'base.qcow2'] as const;

export function makeImages(dir: string): void {
  const img = (...args: string[]): string => qemuImg(args, { cwd: dir });
  const io = (image: string, ...commands: string[]): string => qemuIo(image, commands, { cwd: dir });
  img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '4M');
  // Runs that do not fill whole 64 KiB clusters, and one at the last cluster, so partial reads are checked too.
  io('plain.qcow2', 'write -P 0x5a 0 1M', 'write -P 0xa5 2M 300k', 'write -P 0x3c 4092k 4k');
  img('convert', '-c', '-O', 'qcow2', 'plain.qcow2', 'zlib.qcow2');
  img('convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', 'plain.qcow2', 'zstd.qcow2');
  img('create', '-q', '-f', 'qcow2', 'base.qcow2', '4M');
  io('base.qcow2', 'write -P 0x11 0 2M');
  img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2');
  io('mid.qcow2', 'write -P 0x22 1M 1M');
  img('create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2');
  // A zeroed range over data that shows through from below: the top must hide it.
  io('top.qcow2', 'write -P 0x33 1536k 256k', 'write -z 512k 64k');
}

/** The sha256 of each image's guest bytes as QEMU reads them (`qemu-img convert -O raw`), by file name. */
export async function expectedDigests(dir: string, scratchDir: string): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const image of IMAGES) {
    digests.set(image, await sha256File(qemuRaw(join(dir, image), join(scratchDir, `${image}.raw`))));
  }
  return digests;
}
