import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { qemuImg, qemuIo, run } from '@q/test-support';

/**
 * Clean images made by qemu-img and qemu-io, one per feature the check must walk. Each is built in its own
 * directory under the name `img.qcow2` (helper files, a data file or a backing file, sit beside it under
 * relative names, so a copy of the directory is a working copy of the image).
 */
export interface BaseImage {
  name: string;
  /** What the damage recipes may assume. */
  traits: { snapshots?: boolean; compressed?: boolean; extendedL2?: boolean; dataFile?: boolean; oneBitRefcounts?: boolean; bitmaps?: boolean };
  build(dir: string): void;
}

function create(dir: string, opts: string, size: string, extra: string[] = []): string {
  const img = join(dir, 'img.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), ...extra, img, size], { cwd: dir });
  return img;
}

function io(dir: string, commands: string[]): void {
  qemuIo('img.qcow2', commands, { cwd: dir });
}

const writes = ['write -P 0x11 0 128k', 'write -P 0x12 1M 64k', 'write -P 0x13 3M 192k'];

export const baseImages: BaseImage[] = [
  { name: 'v3 64k', traits: {}, build: (d) => (create(d, '', '4M'), io(d, [...writes, 'write -z 2M 64k'])) },
  { name: 'v2 (compat=0.10)', traits: {}, build: (d) => (create(d, 'compat=0.10', '4M'), io(d, writes)) },
  {
    name: '512-byte clusters, 1-bit refcounts',
    traits: { oneBitRefcounts: true },
    build: (d) => (create(d, 'cluster_size=512,refcount_bits=1', '1M'), io(d, ['write -P 0x21 0 4k', 'write -P 0x22 300k 2k'])),
  },
  {
    name: '4k clusters, 64-bit refcounts',
    traits: {},
    build: (d) => (create(d, 'cluster_size=4k,refcount_bits=64', '4M'), io(d, ['write -P 0x31 0 16k', 'write -P 0x32 1M 8k'])),
  },
  {
    name: 'extended L2',
    traits: { extendedL2: true },
    build: (d) => (
      create(d, 'extended_l2=on,cluster_size=64k', '4M'), io(d, ['write -P 0x41 0 4k', 'write -P 0x42 64k 64k', 'write -z 128k 8k', 'write -P 0x43 1M 2k'])
    ),
  },
  {
    name: 'compressed zlib, 4k clusters',
    traits: { compressed: true },
    build: (d) => (
      create(d, 'cluster_size=4k', '2M'), io(d, ['write -c -P 0x51 0 4k', 'write -c -P 0x52 4k 4k', 'write -c -P 0x53 8k 4k', 'write -P 0x54 64k 4k'])
    ),
  },
  {
    name: 'compressed zstd, 64k clusters',
    traits: { compressed: true },
    build: (d) => (create(d, 'compression_type=zstd', '2M'), io(d, ['write -c -P 0x61 0 64k', 'write -c -P 0x62 64k 64k', 'write -P 0x63 1M 64k'])),
  },
  {
    name: 'internal snapshots',
    traits: { snapshots: true },
    build: (d) => {
      create(d, '', '4M');
      io(d, ['write -P 0x71 0 128k']);
      qemuImg(['snapshot', '-c', 's1', 'img.qcow2'], { cwd: d });
      io(d, ['write -P 0x72 0 64k', 'write -P 0x73 2M 64k']);
      qemuImg(['snapshot', '-c', 's2', 'img.qcow2'], { cwd: d });
    },
  },
  {
    name: 'v2 with a snapshot',
    traits: { snapshots: true },
    build: (d) => {
      create(d, 'compat=0.10', '4M');
      io(d, ['write -P 0x74 0 128k']);
      qemuImg(['snapshot', '-c', 's1', 'img.qcow2'], { cwd: d });
      io(d, ['write -P 0x75 0 64k']);
    },
  },
  {
    name: 'persistent bitmaps',
    traits: { bitmaps: true },
    build: (d) => {
      create(d, '', '4M');
      io(d, ['write -P 0x81 0 128k']);
      qemuImg(['bitmap', '--add', 'img.qcow2', 'b1'], { cwd: d });
      qemuImg(['bitmap', '--add', '-g', '64k', 'img.qcow2', 'b2'], { cwd: d });
      io(d, ['write -P 0x82 1M 64k']);
    },
  },
  {
    name: 'external data file',
    traits: { dataFile: true },
    build: (d) => (create(d, 'data_file=data.raw', '4M'), io(d, ['write -P 0x91 0 128k', 'write -P 0x92 1M 64k'])),
  },
  {
    name: 'overlay on a raw backing file',
    traits: {},
    build: (d) => {
      writeFileSync(join(d, 'back.raw'), Buffer.alloc(4 * 1024 * 1024, 0x99));
      create(d, '', '4M', ['-b', 'back.raw', '-F', 'raw']);
      io(d, ['write -P 0xa1 64k 64k', 'write -P 0xa2 2M 4k']);
    },
  },
  {
    name: 'lazy refcounts, left dirty by a crash',
    traits: {},
    build: (d) => {
      create(d, 'lazy_refcounts=on', '4M');
      // qemu-io killed by its own SIGKILL leaves the dirty bit set and the refcounts stale.
      const r = run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xb1 0 128k', '-c', 'write -P 0xb2 1M 64k', '-c', 'sigraise 9', 'img.qcow2'], { cwd: d });
      if (r.status !== -1) throw new Error(`qemu-io should have been killed: ${r.stdout}${r.stderr}`);
    },
  },
];
