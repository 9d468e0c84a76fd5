import { mkdirSync } from 'node:fs';
import { qemuImg, qemuIo, type Scratch } from '@q/test-support';
import { buildChain } from './chain-builder.js';
import { writeMixedRaw } from './oracle.js';

/** Images for the info, map and compare tests, each built with qemu-img/qemu-io. */
export interface CatalogImage {
  name: string;
  /** `-f` to pass, if any. */
  format?: 'raw' | 'qcow2';
  build(s: Scratch, dir: string): string;
}

function qcow2(dir: string, file: string, opts: string, size: string, commands: string[], extra: string[] = []): string {
  const img = `${dir}/${file}`;
  qemuImg(['create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), ...extra, img, size]);
  if (commands.length > 0) qemuIo(img, commands);
  return img;
}

const wholeClusters = ['write -P 0x11 0 128k', 'write -P 0x12 1M 64k', 'write -P 0x13 3M 192k'];

export const catalog: CatalogImage[] = [
  { name: 'v3 64k, whole clusters', build: (_s, d) => qcow2(d, 'a.qcow2', '', '4M', wholeClusters) },
  { name: 'empty v3 image', build: (_s, d) => qcow2(d, 'a.qcow2', '', '1G', []) },
  { name: 'v2 (compat=0.10) 4k', build: (_s, d) => qcow2(d, 'a.qcow2', 'compat=0.10,cluster_size=4k', '4M', wholeClusters) },
  { name: '512-byte clusters, refcount_bits=1', build: (_s, d) => qcow2(d, 'a.qcow2', 'cluster_size=512,refcount_bits=1', '2M', wholeClusters.slice(0, 2)) },
  { name: '2M clusters, refcount_bits=64', build: (_s, d) => qcow2(d, 'a.qcow2', 'cluster_size=2M,refcount_bits=64', '8M', ['write -P 0x14 2M 2M']) },
  { name: 'zero clusters', build: (_s, d) => qcow2(d, 'a.qcow2', '', '4M', [...wholeClusters, 'write -z 0 64k', 'write -z 2M 128k', 'write -z -u 1M 64k']) },
  {
    name: 'extended L2, whole subclusters',
    build: (_s, d) => qcow2(d, 'a.qcow2', 'extended_l2=on,cluster_size=64k', '4M', ['write -P 0x15 2k 2k', 'write -P 0x16 64k 8k', 'write -z 128k 4k', 'write -P 0x17 1M 64k']),
  },
  {
    name: 'compressed zlib (convert -c)',
    build: (_s, d) => {
      const src = writeMixedRaw(`${d}/src.raw`, 2 * 1024 * 1024, 3);
      qemuImg(['convert', '-c', '-O', 'qcow2', src, `${d}/a.qcow2`]);
      return `${d}/a.qcow2`;
    },
  },
  {
    name: 'compressed zstd 4k',
    build: (_s, d) => qcow2(d, 'a.qcow2', 'compression_type=zstd,cluster_size=4k', '1M', ['write -c -P 0x18 0 4k', 'write -c -P 0x19 8k 4k', 'write -P 0x1a 64k 4k']),
  },
  { name: 'lazy refcounts, 1 GiB virtual', build: (_s, d) => qcow2(d, 'a.qcow2', 'lazy_refcounts=on', '1G', ['write -P 0x1b 512M 64k']) },
  {
    name: 'persistent bitmaps',
    build: (_s, d) => {
      const img = qcow2(d, 'a.qcow2', '', '4M', wholeClusters);
      qemuImg(['bitmap', '--add', img, 'b0']);
      qemuImg(['bitmap', '--add', '-g', '512k', img, 'b1']);
      qemuImg(['bitmap', '--disable', img, 'b1']);
      return img;
    },
  },
  {
    name: 'internal snapshots',
    build: (_s, d) => {
      const img = qcow2(d, 'a.qcow2', '', '4M', wholeClusters.slice(0, 1));
      qemuImg(['snapshot', '-c', 'one', img]);
      qemuIo(img, ['write -P 0x21 0 64k']);
      qemuImg(['snapshot', '-c', 'two', img]);
      qemuImg(['resize', img, '6M']);
      return img;
    },
  },
  {
    name: 'external data file',
    build: (_s, d) => qcow2(d, 'a.qcow2', `data_file=${d}/a.data`, '4M', wholeClusters),
  },
  {
    name: 'external data file, data_file_raw=on',
    build: (_s, d) => qcow2(d, 'a.qcow2', `data_file=${d}/a.data,data_file_raw=on`, '4M', wholeClusters),
  },
  { name: 'preallocation=metadata', build: (_s, d) => qcow2(d, 'a.qcow2', 'preallocation=metadata', '4M', ['write -P 0x22 0 64k']) },
  {
    name: 'backing chain: raw <- 4k <- 64k, relative names',
    build: (s, d) => {
      const rel = d.slice(s.dir.length + 1);
      const paths = buildChain(s, 'c', [
        { format: 'raw', size: 4 * 1024 * 1024, dir: rel, writes: ['write -P 0x31 0 4M'] },
        { format: 'qcow2', size: 4 * 1024 * 1024, opts: 'cluster_size=4k', dir: rel, writes: ['write -P 0x32 64k 64k', 'write -z 1M 64k'] },
        { format: 'qcow2', size: 4 * 1024 * 1024, opts: 'cluster_size=64k', dir: rel, writes: ['write -P 0x33 2M 128k'] },
      ]);
      return paths[2]!;
    },
  },
  {
    name: 'backing chain, absolute name, backing without format',
    build: (s, d) => {
      const rel = d.slice(s.dir.length + 1);
      const paths = buildChain(s, 'n', [
        { format: 'qcow2', size: 2 * 1024 * 1024, opts: 'cluster_size=64k', dir: rel, writes: ['write -P 0x41 0 1M'] },
        { format: 'qcow2', size: 4 * 1024 * 1024, opts: 'cluster_size=64k', dir: rel, backingName: 'absolute', noBackingFormat: true, writes: ['write -P 0x42 512k 64k'] },
      ]);
      return paths[1]!;
    },
  },
  {
    name: 'v2 overlay of a shorter raw file',
    build: (_s, d) => {
      qemuImg(['create', '-q', '-f', 'raw', `${d}/base.raw`, '1M']);
      qemuIo(`${d}/base.raw`, ['write -P 0x51 0 1M'], { format: 'raw' });
      return qcow2(d, 'a.qcow2', 'compat=0.10', '3M', ['write -P 0x52 2M 64k'], ['-b', 'base.raw', '-F', 'raw']);
    },
  },
  {
    name: 'raw image',
    format: 'raw',
    build: (_s, d) => {
      qemuImg(['create', '-q', '-f', 'raw', `${d}/a.raw`, '3M']);
      qemuIo(`${d}/a.raw`, ['write -P 0x61 0 3M'], { format: 'raw' });
      return `${d}/a.raw`;
    },
  },
];

/** Builds every catalog image, each in its own directory under the scratch dir. */
export function buildCatalog(s: Scratch): Array<CatalogImage & { path: string }> {
  return catalog.map((entry, i) => {
    const dir = s.path(`cat${i}`);
    mkdirSync(dir, { recursive: true });
    return { ...entry, path: entry.build(s, dir) };
  });
}
