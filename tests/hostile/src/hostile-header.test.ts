import { mkdirSync, writeFileSync } from 'node:fs';
import { EXT_BITMAPS, EXT_FEATURE_NAMES, H } from './image-patch.js';
import { hostileSuite, type HostileCase } from './hostile-harness.js';

// Damage to the header, its extensions and the fixed tables it points at: every command must refuse the image
// at open time, in one clear line. (Table-driven: name, base image, damage, commands, expected message.)

const TiB = 2 ** 40;
const PAST_END = /past the end|end of the file/i;

const cases: HostileCase[] = [
  // --- magic and version -------------------------------------------------------------------------------------
  { name: 'bad magic (forced -f qcow2)', base: 'v3', damage: (i) => i.setU32(H.magic, 0x514649fa), forceQcow2: true, expect: /not in qcow2 format|magic/i },
  { name: 'version 1', base: 'v3', damage: (i) => i.setU32(H.version, 1), expect: /version 1/i },
  { name: 'version 4', base: 'v3', damage: (i) => i.setU32(H.version, 4), expect: /version 4/i },
  { name: 'version 0xffffffff', base: 'v2', damage: (i) => i.setU32(H.version, 0xffffffff), expect: /version/i },

  // --- cluster bits ------------------------------------------------------------------------------------------
  { name: 'cluster_bits 8 (below 9)', base: 'v3', damage: (i) => i.setU32(H.clusterBits, 8), expect: /cluster size/i },
  { name: 'cluster_bits 22 (above 21)', base: 'v3', damage: (i) => i.setU32(H.clusterBits, 22), expect: /cluster size/i },
  { name: 'cluster_bits 0', base: 'v2', damage: (i) => i.setU32(H.clusterBits, 0), expect: /cluster size/i },
  { name: 'cluster_bits 0xffffffff', base: 'v3', damage: (i) => i.setU32(H.clusterBits, 0xffffffff), expect: /cluster size/i },

  // --- incompatible features ---------------------------------------------------------------------------------
  {
    name: 'unknown incompatible bit 5, not in the feature name table',
    base: 'v3',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 5n),
    expect: /feature.*\b5\b/i,
  },
  {
    name: 'unknown incompatible bit 63, not in the feature name table',
    base: 'v3',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 63n),
    expect: /feature.*\b63\b/i,
  },
  {
    name: 'unknown incompatible bit 5 named by the feature name table',
    base: 'v3',
    damage: (i) => {
      const table = i.extension(EXT_FEATURE_NAMES);
      const entry = table.at + 8; // first 48-byte entry
      i.buf.fill(0, entry, entry + 48);
      i.setU8(entry, 0).setU8(entry + 1, 5);
      i.buf.write('hostile frobnicator', entry + 2, 'latin1');
      i.setU64(H.incompatibleFeatures, 1n << 5n);
    },
    expect: /hostile frobnicator/,
  },
  {
    name: 'unknown incompatible bits 5 (named) and 9 (unnamed)',
    base: 'v3',
    damage: (i) => {
      const entry = i.extension(EXT_FEATURE_NAMES).at + 8;
      i.buf.fill(0, entry, entry + 48);
      i.setU8(entry, 0).setU8(entry + 1, 5);
      i.buf.write('hostile frobnicator', entry + 2, 'latin1');
      i.setU64(H.incompatibleFeatures, (1n << 5n) | (1n << 9n));
    },
    expect: /hostile frobnicator.*\b9\b|\b9\b.*hostile frobnicator/,
  },
  {
    name: 'external data file bit without a data file name',
    base: 'v3',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 2n),
    expect: /data.file/i,
  },
  {
    name: 'extended L2 bit with 512-byte clusters',
    base: 'small',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 4n),
    expect: /extended L2/i,
  },
  { name: 'compression type zstd without its incompatible bit', base: 'v3', damage: (i) => i.setU8(H.compressionType, 1), expect: /compression type/i },
  {
    name: 'compression incompatible bit with compression type zlib',
    base: 'v3',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 3n),
    expect: /compression type/i,
  },
  {
    name: 'compression type 7 with its incompatible bit',
    base: 'v3',
    damage: (i) => i.setU64(H.incompatibleFeatures, 1n << 3n).setU8(H.compressionType, 7),
    expect: /compression type/i,
  },

  // --- encryption --------------------------------------------------------------------------------------------
  { name: 'crypt_method 1 (AES)', base: 'v3', damage: (i) => i.setU32(H.cryptMethod, 1), expect: /(not supported|unsupported).*AES|AES.*(not supported|unsupported)/i },
  { name: 'crypt_method 2 (LUKS) without a crypto header', base: 'v3', damage: (i) => i.setU32(H.cryptMethod, 2), expect: /(not supported|unsupported).*LUKS|LUKS.*(not supported|unsupported)/i },
  { name: 'crypt_method 1 on a v2 image', base: 'v2', damage: (i) => i.setU32(H.cryptMethod, 1), expect: /encrypt.*not supported|not supported.*encrypt/i },
  { name: 'crypt_method 0xffffffff', base: 'v3', damage: (i) => i.setU32(H.cryptMethod, 0xffffffff), expect: /encrypt/i },
  { name: 'real LUKS image made by qemu-img', base: 'luks', expect: /(not supported|unsupported).*LUKS|LUKS.*(not supported|unsupported)/i },

  // --- header length -----------------------------------------------------------------------------------------
  { name: 'v3 header_length 100 (< 104)', base: 'v3', damage: (i) => i.setU32(H.headerLength, 100), expect: /header/i },
  { name: 'v3 header_length 0', base: 'v3', damage: (i) => i.setU32(H.headerLength, 0), expect: /header/i },
  { name: 'v3 header_length cluster size + 8', base: 'v3', damage: (i) => i.setU32(H.headerLength, 65536 + 8), expect: /header.*cluster|cluster.*header/i },
  { name: 'v3 header_length 0xffffffff', base: 'v3', damage: (i) => i.setU32(H.headerLength, 0xffffffff), expect: /header/i },
  {
    name: 'header extension whose length runs past the first cluster',
    base: 'v3',
    damage: (i) => i.setU32(i.extension(EXT_FEATURE_NAMES).at + 4, 0xfffffff0),
    expect: /extension/i,
  },

  // --- refcount order ------------------------------------------------------------------------------------------
  { name: 'refcount_order 7', base: 'v3', damage: (i) => i.setU32(H.refcountOrder, 7), expect: /refcount order/i },
  { name: 'refcount_order 0xffffffff', base: 'v3', damage: (i) => i.setU32(H.refcountOrder, 0xffffffff), expect: /refcount order/i },

  // --- table sizes beyond QEMU's limits ---------------------------------------------------------------------
  { name: 'l1_size 32 MiB/8 + 1 entries', base: 'v3', damage: (i) => i.setU32(H.l1Size, 4 * 1024 * 1024 + 1), expect: /L1 table.*large|too large.*L1/i },
  { name: 'l1_size 0xffffffff', base: 'v3', damage: (i) => i.setU32(H.l1Size, 0xffffffff), expect: /L1 table.*large|too large.*L1/i },
  {
    name: 'l1_size at the 32 MiB limit, virtual size to match, table past EOF (must not allocate first)',
    base: 'v3',
    damage: (i) => i.setU32(H.l1Size, 4 * 1024 * 1024).setU64(H.size, 4 * 1024 * 1024 * 512 * 1024 * 1024),
    expect: /L1.*(past the end|end of the file)/i,
  },
  {
    name: 'refcount_table_clusters 129 (table > 8 MiB at 64 KiB clusters)',
    base: 'v3',
    damage: (i) => i.setU32(H.refcountTableClusters, 129),
    expect: /(refcount|reference count) table.*large/i,
  },
  {
    name: 'refcount_table_clusters 0xffffffff',
    base: 'v3',
    damage: (i) => i.setU32(H.refcountTableClusters, 0xffffffff),
    expect: /(refcount|reference count) table.*large/i,
  },
  { name: 'refcount_table_clusters 0', base: 'v3', damage: (i) => i.setU32(H.refcountTableClusters, 0), expect: /(refcount|reference count) table/i },
  {
    name: 'refcount_table_clusters 128 (8 MiB, allowed) running past EOF',
    base: 'v3',
    damage: (i) => i.setU32(H.refcountTableClusters, 128),
    expect: /(refcount|reference count) table.*(past the end|end of the file)/i,
  },

  // --- table offsets -----------------------------------------------------------------------------------------
  { name: 'L1 table offset not cluster aligned', base: 'v3', damage: (i) => i.setU64(H.l1TableOffset, i.l1TableOffset + 8), expect: /L1.*align/i },
  { name: 'L1 table offset 0 (the header)', base: 'v3', damage: (i) => i.setU64(H.l1TableOffset, 0), expect: /L1.*header|header.*L1/i },
  { name: 'L1 table past EOF', base: 'v3', damage: (i) => i.setU64(H.l1TableOffset, TiB), expect: /L1.*(past the end|end of the file)/i },
  { name: 'L1 table offset beyond 2^53', base: 'v3', damage: (i) => i.setU64(H.l1TableOffset, 1n << 60n), expect: /L1/i },
  {
    name: 'refcount table offset not cluster aligned',
    base: 'v3',
    damage: (i) => i.setU64(H.refcountTableOffset, i.refcountTableOffset + 512),
    expect: /(refcount|reference count) table.*align/i,
  },
  { name: 'refcount table offset 0 (the header)', base: 'v3', damage: (i) => i.setU64(H.refcountTableOffset, 0), expect: /(refcount|reference count) table.*header/i },
  { name: 'refcount table past EOF', base: 'v3', damage: (i) => i.setU64(H.refcountTableOffset, TiB), expect: /(refcount|reference count) table.*(past the end|end of the file)/i },
  {
    name: 'snapshot table offset not cluster aligned',
    base: 'snap',
    damage: (i) => i.setU64(H.snapshotsOffset, i.snapshotsOffset + 8),
    expect: /snapshot table.*align/i,
  },
  { name: 'snapshot table offset 0 (the header)', base: 'snap', damage: (i) => i.setU64(H.snapshotsOffset, 0), expect: /snapshot table.*header/i },

  // --- L1 too small --------------------------------------------------------------------------------------------
  { name: 'L1 too small for the virtual size (1 GiB with one entry)', base: 'v3', damage: (i) => i.setU64(H.size, 2 ** 30), expect: /L1 table.*small/i },
  { name: 'l1_size 0 with a 4 MiB disk', base: 'v3', damage: (i) => i.setU32(H.l1Size, 0), expect: /L1 table.*small/i },
  { name: 'virtual size 2^60', base: 'v3', damage: (i) => i.setU64(H.size, 1n << 60n), expect: /size|L1/i },
  { name: 'virtual size 2^64-1', base: 'v2', damage: (i) => i.setU64(H.size, (1n << 64n) - 1n), expect: /size|L1/i },

  // --- backing file name -------------------------------------------------------------------------------------
  {
    name: 'backing file name outside the first cluster',
    base: 'v3',
    damage: (i) => i.setU64(H.backingFileOffset, 65536 - 4).setU32(H.backingFileSize, 16),
    expect: /backing file/i,
  },
  { name: 'backing file name 2000 bytes long', base: 'v3', damage: (i) => i.setU64(H.backingFileOffset, 512).setU32(H.backingFileSize, 2000), expect: /backing file.*long/i },

  // --- bitmaps extension -------------------------------------------------------------------------------------
  {
    name: 'bitmap directory past EOF',
    base: 'bitmaps',
    damage: (i) => i.setU64(i.extension(EXT_BITMAPS).at + 8 + 16, TiB),
    expect: /bitmap directory.*(past the end|end of the file)/i,
  },
  {
    name: 'bitmap directory size beyond the limit',
    base: 'bitmaps',
    damage: (i) => i.setU64(i.extension(EXT_BITMAPS).at + 8 + 8, 2 ** 40),
    expect: /bitmap directory.*large/i,
  },
  { name: 'bitmaps extension with 0 bitmaps', base: 'bitmaps', damage: (i) => i.setU32(i.extension(EXT_BITMAPS).at + 8, 0), expect: /bitmap/i },
  {
    name: 'bitmap directory entry name running past the directory',
    base: 'bitmaps',
    damage: (i) => {
      const directory = i.num(i.extension(EXT_BITMAPS).at + 8 + 16);
      i.setU16(directory + 18, 1023);
    },
    expect: /bitmap directory/i,
  },

  // --- truncated files ----------------------------------------------------------------------------------------
  { name: 'zero-length file (forced -f qcow2)', build: (c) => (writeFileSync(c.path('img.qcow2'), ''), c.path('img.qcow2')), forceQcow2: true, expect: /qcow2|short|header|format/i },
  { name: 'cut after 3 bytes (forced -f qcow2)', base: 'v3', damage: (i) => i.truncate(3), forceQcow2: true, expect: /qcow2|short|header|format/i },
  { name: 'cut in the header at 50 bytes', base: 'v3', damage: (i) => i.truncate(50), expect: /short|header|past|end of the file/i },
  { name: 'v2 cut in the header at 71 bytes', base: 'v2', damage: (i) => i.truncate(71), expect: /short|header|past|end of the file/i },
  { name: 'v3 cut in the header at 100 bytes', base: 'v3', damage: (i) => i.truncate(100), expect: /short|header|past|end of the file/i },
  { name: 'cut inside the header extensions (200 bytes)', base: 'v3', damage: (i) => i.truncate(200), expect: /end of the file|truncat|too short|shorter/i },
  { name: 'cut after the first cluster', base: 'v3', damage: (i) => i.truncate(65536), expect: PAST_END },
  { name: 'cut inside the refcount table', base: 'v3', damage: (i) => i.truncate(i.refcountTableOffset + 100), expect: PAST_END },

  // --- not image files ----------------------------------------------------------------------------------------
  { name: 'a directory', build: (c) => (mkdirSync(c.path('img.qcow2')), c.path('img.qcow2')), expect: /directory/i },
  { name: 'a directory (forced -f qcow2)', build: (c) => (mkdirSync(c.path('img.qcow2')), c.path('img.qcow2')), forceQcow2: true, expect: /directory/i },
  { name: 'a nonexistent file', build: (c) => c.path('nonexistent.qcow2'), expect: /no such file|not found|does not exist/i },
];

hostileSuite('hostile headers: qcow refuses the image at open, in one line', cases);
