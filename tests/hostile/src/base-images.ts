import { copyFileSync, readFileSync } from 'node:fs';
import { qemuImg, qemuIo, type Scratch } from '@q/test-support';

/**
 * Valid images made by qemu-img / qemu-io, the starting point of every hostile case: each case copies one and
 * damages specific bytes. Built once per test file.
 */
export type BaseName =
  | 'v3'
  | 'v2'
  | 'small'
  | 'l1big'
  | 'compressed'
  | 'compressed2m'
  | 'zstd'
  | 'extl2'
  | 'snap'
  | 'bitmaps'
  | 'luks';

export interface BaseImage {
  path: string;
  bytes: Buffer;
  /** Virtual size: what `qcow io` reads whole. */
  size: number;
}

export type BaseImages = Record<BaseName, BaseImage>;

function create(path: string, options: string, size: string): void {
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', options, path, size]);
}

const builders: Record<BaseName, (s: Scratch, path: string) => number> = {
  v3(s, p) {
    create(p, 'compat=1.1', '4M');
    qemuIo(p, ['write -P 0x31 0 64k', 'write -P 0x32 1M 4k', 'write -P 0x33 3M 128k']);
    return 4 << 20;
  },
  v2(s, p) {
    create(p, 'compat=0.10', '4M');
    qemuIo(p, ['write -P 0x31 0 64k', 'write -P 0x32 1M 4k', 'write -P 0x33 3M 128k']);
    return 4 << 20;
  },
  small(s, p) {
    create(p, 'compat=1.1,cluster_size=512', '1M');
    qemuIo(p, ['write -P 0x31 0 4k', 'write -P 0x32 512k 1k']);
    return 1 << 20;
  },
  // 512-byte clusters and 64 MiB: the L1 table is 16 KiB (32 clusters), so a file can be cut inside it.
  l1big(s, p) {
    create(p, 'compat=1.1,cluster_size=512', '64M');
    qemuIo(p, ['write -P 0x31 0 1k', 'write -P 0x32 60M 1k']);
    return 64 << 20;
  },
  compressed(s, p) {
    const raw = s.path('compressed-src.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '4M']);
    qemuIo(raw, ['write -P 0x41 0 64k', 'write -P 0x42 64k 64k', 'write -P 0x43 1M 192k'], { format: 'raw' });
    qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1', raw, p]);
    return 4 << 20;
  },
  compressed2m(s, p) {
    const raw = s.path('compressed2m-src.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '4M']);
    qemuIo(raw, ['write -P 0x44 0 2M'], { format: 'raw' });
    qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1,cluster_size=2M', raw, p]);
    return 4 << 20;
  },
  zstd(s, p) {
    const raw = s.path('zstd-src.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '4M']);
    qemuIo(raw, ['write -P 0x45 0 128k', 'write -P 0x46 2M 64k'], { format: 'raw' });
    qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1,compression_type=zstd', raw, p]);
    return 4 << 20;
  },
  extl2(s, p) {
    create(p, 'compat=1.1,extended_l2=on,cluster_size=64k', '4M');
    qemuIo(p, ['write -P 0x51 0 4k', 'write -P 0x52 64k 64k', 'write -z 200k 8k']);
    return 4 << 20;
  },
  // 4 KiB clusters; qemu-img leaves the snapshot table as the last (short) piece of the file.
  snap(s, p) {
    create(p, 'compat=1.1,cluster_size=4096', '4M');
    qemuIo(p, ['write -P 0x31 0 64k']);
    qemuImg(['snapshot', '-c', 's1', p]);
    qemuIo(p, ['write -P 0x32 0 4k']);
    qemuImg(['snapshot', '-c', 's2', p]);
    return 4 << 20;
  },
  bitmaps(s, p) {
    create(p, 'compat=1.1', '4M');
    qemuImg(['bitmap', '--add', p, 'b0']);
    qemuIo(p, ['write -P 0x61 0 64k']);
    return 4 << 20;
  },
  luks(s, p) {
    // QEMU calibrates the LUKS key derivation by timing it; under load it can measure zero CPU time and give up
    // ("Unable to get accurate CPU usage"). That is QEMU's flake, not the test's subject: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        qemuImg(['create', '-q', '--object', 'secret,id=sec0,data=abc', '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', p, '1M']);
        break;
      } catch (error) {
        if (attempt >= 5 || !/accurate CPU usage/.test((error as Error).message)) throw error;
      }
    }
    return 1 << 20;
  },
};

/** Builds one base image in `s`. */
export function buildBaseImage(s: Scratch, name: BaseName): BaseImage {
  const path = s.path(`base-${name}.qcow2`);
  const size = builders[name](s, path);
  return { path, bytes: readFileSync(path), size };
}

/** Builds every base image in `s` (a few hundred milliseconds of qemu-img). */
export function buildBaseImages(s: Scratch): BaseImages {
  const result = {} as BaseImages;
  for (const name of Object.keys(builders) as BaseName[]) result[name] = buildBaseImage(s, name);
  return result;
}

export function copyBase(base: BaseImage, to: string): void {
  copyFileSync(base.path, to);
}
