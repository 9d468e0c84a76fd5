import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Rng, runOk } from '@q/test-support';

/** File checksums by path inside the file system ("data/blob.bin"), lost+found left out. */
export type FileSums = Map<string, string>;

const MiB = 1024 * 1024;

/**
 * The base image's files on the host: a few MiB of random data (many clusters, for copy-on-write to split), small
 * files of odd sizes (partial clusters and blocks), nested directories, an empty file, and MANIFEST.sha256 (in
 * sha256sum's format, for the guest's `sha256sum -c`). Sizes are seeded; contents random.
 */
export function writeBaseTree(dir: string): FileSums {
  const rng = new Rng(13);
  const files = new Map<string, Buffer>();
  files.set('data/blob.bin', randomFillSync(Buffer.alloc(6 * MiB)));
  files.set('data/empty', Buffer.alloc(0));
  files.set('docs/readme.txt', Buffer.from('A file system built on the host with mke2fs -d, served by qcow serve.\n'));
  for (let i = 0; i < 40; i++) files.set(`small/${i % 4}/file-${i}`, randomFillSync(Buffer.alloc(rng.range(1, 70_000))));
  const sums: FileSums = new Map();
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
    sums.set(path, sha256(data));
  }
  const manifest = [...sums].map(([path, sum]) => `${sum}  ./${path}\n`).join('');
  writeFileSync(join(dir, 'MANIFEST.sha256'), manifest);
  sums.set('MANIFEST.sha256', sha256(Buffer.from(manifest)));
  return sums;
}

/** A raw ext4 image of `sizeMiB` holding `dir`'s tree (mke2fs -d: no mount, no root needed). */
export function makeExt4(dir: string, image: string, sizeMiB: number): void {
  runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'qcow-vm', '-d', dir, image, `${sizeMiB}M`]);
}

/**
 * Every file of a raw ext4 image with its checksum, read by debugfs (`rdump`) rather than a mount: what the
 * bytes on disk say, whatever the host kernel would cache or replay.
 */
export function ext4FileSums(image: string, scratchDir: string): FileSums {
  const out = join(scratchDir, 'rdump');
  mkdirSync(out, { recursive: true });
  runOk('debugfs', ['-R', `rdump / ${out}`, image]);
  const sums: FileSums = new Map();
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (at !== out || entry.name !== 'lost+found') walk(path);
      } else if (entry.isFile()) sums.set(relative(out, path), sha256(readFileSync(path)));
    }
  };
  walk(out);
  return sums;
}

/**
 * The `KIND HASH /mnt/PATH` report lines a guest printed (`sum` by default; `synced`, `wrote`), as file sums
 * with paths relative to the mount.
 */
export function reportedSums(reports: readonly string[], kind = 'sum', mount = '/mnt'): FileSums {
  const sums: FileSums = new Map();
  for (const line of reports) {
    const match = new RegExp(`^${kind} ([0-9a-f]{64}) (\\S+)$`).exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    sums.set(relative(mount, match[2]), match[1]);
  }
  return sums;
}

/** Sums as sorted `HASH  ./PATH` lines: sha256sum -c's input, and a readable diff in a failed expectation. */
export function sumLines(sums: FileSums): string {
  return [...sums]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, sum]) => `${sum}  ./${path}\n`)
    .join('');
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
