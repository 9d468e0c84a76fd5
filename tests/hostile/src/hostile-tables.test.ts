import { closeSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { qemuImg } from '@q/test-support';
import { deflateBomb, H } from './image-patch.js';
import { CHAIN_COMMANDS, DATA_COMMANDS, hostileSuite, READ_COMMANDS, type CaseContext, type HostileCase } from './hostile-harness.js';

// Damage reached through the mapping tables (L1 -> L2 -> data), compressed clusters, snapshot tables and backing
// chains. Metadata that points past the end of the file is an error, never silent zeros (unlike QEMU).

const TiB = 2 ** 40;
const PAST_END = /past the end|end of the file/i;

function layer(c: CaseContext, name: string, backing?: string): string {
  const path = c.path(name);
  const args = ['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1'];
  if (backing !== undefined) args.push('-u', '-b', backing, '-F', 'qcow2');
  qemuImg([...args, path, '1M']);
  return path;
}

const cases: HostileCase[] = [
  // --- L1 table ------------------------------------------------------------------------------------------------
  {
    name: 'cut in the middle of the L1 table (16 KiB L1, 512-byte clusters)',
    base: 'l1big',
    damage: (i) => i.truncate(i.l1TableOffset + 8000),
    expect: /L1.*(past the end|end of the file)/i,
  },

  // --- L2 tables ----------------------------------------------------------------------------------------------
  { name: 'L2 table past EOF', base: 'v3', damage: (i) => i.setL2TableOffset(0, TiB), commands: DATA_COMMANDS, expect: /L2.*(past the end|end of the file)/i },
  {
    name: 'L2 table offset not cluster aligned',
    base: 'v3',
    damage: (i) => i.setL2TableOffset(0, i.l2TableOffset(0) + 512),
    commands: DATA_COMMANDS,
    expect: /L2.*align/i,
  },
  {
    name: 'L2 table offset 512 into the header cluster (64 KiB clusters)',
    base: 'v3',
    damage: (i) => i.setL2TableOffset(0, 512),
    commands: DATA_COMMANDS,
    expect: /L2.*(align|header)/i,
  },
  {
    name: 'L2 table on the refcount table',
    base: 'v3',
    damage: (i) => i.setL2TableOffset(0, i.refcountTableOffset),
    commands: DATA_COMMANDS,
    expect: /L2.*(overlap|refcount)/i,
  },
  {
    name: 'L2 table on the L1 table',
    base: 'v3',
    damage: (i) => i.setL2TableOffset(0, i.l1TableOffset),
    commands: DATA_COMMANDS,
    expect: /L2.*(overlap|L1)/i,
  },
  {
    name: 'L2 table offset beyond 2^53',
    base: 'v3',
    damage: (i) => i.setU64(i.l1EntryAt(0), (1n << 63n) | (0xff_ffffn << 32n)),
    commands: DATA_COMMANDS,
    expect: /L2/i,
  },
  { name: 'cut in the middle of an L2 table', base: 'v3', damage: (i) => i.truncate(i.l2TableOffset(0) + 100), commands: DATA_COMMANDS, expect: /L2.*(past the end|end of the file)/i },

  // --- data clusters ------------------------------------------------------------------------------------------
  { name: 'data cluster past EOF', base: 'v3', damage: (i) => i.setDataOffset(0, TiB), commands: DATA_COMMANDS, expect: /data cluster.*(past the end|end of the file)/i },
  {
    name: 'data cluster offset not cluster aligned',
    base: 'v3',
    damage: (i) => i.setDataOffset(0, i.dataOffset(0) + 512),
    commands: DATA_COMMANDS,
    expect: /align/i,
  },
  {
    name: 'data cluster offset 512 (inside the header cluster)',
    base: 'v3',
    damage: (i) => i.setDataOffset(0, 512),
    commands: DATA_COMMANDS,
    expect: /align|header/i,
  },
  {
    name: 'data cluster on the L1 table',
    base: 'v3',
    damage: (i) => i.setDataOffset(0, i.l1TableOffset),
    commands: DATA_COMMANDS,
    expect: /overlap|L1/i,
  },
  {
    name: 'data cluster on the refcount table (v2)',
    base: 'v2',
    damage: (i) => i.setDataOffset(1 << 20, i.refcountTableOffset),
    commands: DATA_COMMANDS,
    expect: /overlap|refcount/i,
  },
  {
    name: 'extended L2: allocated subclusters with host offset 0 (data in the header)',
    base: 'extl2',
    damage: (i) => i.setDataOffset(64 * 1024, 0),
    commands: DATA_COMMANDS,
    expect: /header|without a cluster/i,
  },
  {
    name: 'extended L2: a subcluster both allocated and zero',
    base: 'extl2',
    damage: (i) => {
      const at = i.l2EntryAt(0);
      i.setU32(at + 8, i.u32(at + 8) | 1); // zero bit of subcluster 0, whose alloc bit is set
    },
    commands: DATA_COMMANDS,
    expect: /subcluster/i,
  },
  {
    name: 'extended L2: every subcluster both allocated and zero',
    base: 'extl2',
    damage: (i) => {
      const at = i.l2EntryAt(64 * 1024);
      i.setU32(at + 8, 0xffffffff).setU32(at + 12, 0xffffffff);
    },
    commands: DATA_COMMANDS,
    expect: /subcluster/i,
  },
  {
    name: 'cut in the middle of data: later data clusters lie wholly past EOF',
    base: 'v3',
    damage: (i) => i.truncate(i.dataOffset(1 << 20) + 0x8000),
    commands: DATA_COMMANDS,
    expect: PAST_END,
  },
  {
    name: 'cut in the middle of the last data cluster (its second half is past EOF)',
    base: 'v3',
    damage: (i) => {
      const last = i.dataOffset(3 * 1024 * 1024 + 64 * 1024);
      if (last + 65536 !== i.length) throw new Error('test setup: the last data cluster is not at the end of the file');
      i.truncate(last + 0x8000);
    },
    commands: READ_COMMANDS,
    expect: PAST_END,
  },

  // --- compressed clusters ------------------------------------------------------------------------------------
  {
    name: 'compressed descriptor past EOF',
    base: 'compressed',
    damage: (i) => i.setCompressed(0, TiB + 77, 2),
    commands: DATA_COMMANDS,
    expect: /compressed.*(past the end|end of the file)/i,
  },
  {
    name: 'compressed descriptor pointing into the header',
    base: 'compressed',
    damage: (i) => i.setCompressed(0, 0x100, 2),
    commands: DATA_COMMANDS,
    expect: /compressed.*header/i,
  },
  {
    name: 'compressed descriptor starting in the last sector, running far past EOF',
    base: 'compressed',
    damage: (i) => i.setCompressed(0, i.length - 10, 64),
    commands: READ_COMMANDS,
    expect: /compress|inflate|past the end|end of the file/i,
  },
  {
    name: 'compressed data overwritten with 0xff garbage (zlib)',
    base: 'compressed',
    damage: (i) => {
      const { hostOffset, sectors } = i.compressed(0);
      i.buf.fill(0xff, hostOffset, Math.min(i.length, hostOffset + sectors * 512));
    },
    commands: READ_COMMANDS,
    expect: /compress|inflate/i,
  },
  {
    name: 'compressed descriptor pointing into the refcount table',
    base: 'compressed',
    damage: (i) => i.setCompressed(0, i.refcountTableOffset + 3, 4),
    commands: DATA_COMMANDS,
    expect: /compress|inflate|overlap/i,
  },
  {
    name: 'compressed data overwritten with 0xa5 garbage (zstd)',
    base: 'zstd',
    damage: (i) => {
      const { hostOffset, sectors } = i.compressed(0);
      i.buf.fill(0xa5, hostOffset, Math.min(i.length, hostOffset + sectors * 512));
    },
    commands: READ_COMMANDS,
    expect: /compress|zstd/i,
  },
  {
    name: 'compressed data truncated to its first 8 bytes (zstd frame cut short)',
    base: 'zstd',
    damage: (i) => {
      const { hostOffset } = i.compressed(0);
      i.setCompressed(0, hostOffset, 1);
      i.buf.fill(0, hostOffset + 8, hostOffset + 512);
    },
    commands: READ_COMMANDS,
    expect: /compress|zstd/i,
  },
  {
    name: 'zstd frame declaring ~2 GiB of content but holding 1 byte',
    base: 'zstd',
    damage: (i) => {
      const { hostOffset } = i.compressed(0);
      i.put(hostOffset, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0x00, 0x00, 0xe0, 0x7f, 0x09, 0x00, 0x00, 0x00]));
      i.setCompressed(0, hostOffset, 1);
    },
    commands: READ_COMMANDS,
    expect: /compress|zstd/i,
  },
  {
    name: 'deflate bomb: a 4 MiB compressed cluster that inflates to ~660 MB (2 MiB clusters)',
    base: 'compressed2m',
    damage: (i) => {
      const at = Math.ceil(i.length / 512) * 512;
      const bomb = deflateBomb(Math.floor(((4 * 1024 * 1024 - 64) * 8) / 13));
      i.put(at, bomb);
      i.setCompressed(0, at, Math.ceil(bomb.length / 512));
    },
    commands: READ_COMMANDS,
    expect: /compress|inflate/i,
  },

  // --- snapshot table ----------------------------------------------------------------------------------------
  { name: 'nb_snapshots 60000: the table overruns the file', base: 'snap', damage: (i) => i.setU32(H.nbSnapshots, 60000), expect: /snapshot.*(past the end|end of the file)/i },
  { name: 'nb_snapshots 65537', base: 'snap', damage: (i) => i.setU32(H.nbSnapshots, 65537), expect: /snapshots/i },
  { name: 'nb_snapshots 0xffffffff', base: 'snap', damage: (i) => i.setU32(H.nbSnapshots, 0xffffffff), expect: /snapshots/i },
  {
    name: 'snapshot name length running past EOF',
    base: 'snap',
    damage: (i) => {
      const last = i.snapshotEntryAt(i.nbSnapshots - 1);
      i.setU16(last + 14, 0xffff);
      if (last + 40 + 0xffff <= i.length) throw new Error('test setup: the name would not run past the end');
    },
    expect: /snapshot.*(past the end|end of the file)/i,
  },
  {
    name: 'snapshot id length running past EOF (first entry)',
    base: 'snap',
    damage: (i) => i.setU16(i.snapshotEntryAt(0) + 12, 0xffff),
    expect: /snapshot.*(past the end|end of the file)/i,
  },
  {
    name: 'snapshot extra data size 0xffffffff',
    base: 'snap',
    damage: (i) => i.setU32(i.snapshotEntryAt(0) + 36, 0xffffffff),
    expect: /snapshot/i,
  },
  {
    // 1025 entries of 40 + 65535 bytes: a 67 MB table, past QEMU's 64 MiB limit, in a sparse file big enough to
    // hold it. The reader must stop at the limit instead of reading (or allocating for) the whole claim.
    name: 'snapshot table of 1025 entries with 64 KiB names (> 64 MiB limit), sparse 70 MB file',
    base: 'snap',
    damage: (i) => {
      i.setU64(H.snapshotsOffset, 1 << 20).setU32(H.nbSnapshots, 1025);
    },
    finish: (path) => {
      const fd = openSync(path, 'r+');
      try {
        const entry = Buffer.alloc(40);
        entry.writeUInt16BE(0xffff, 14); // name length; L1 offset/size 0, no id, no extra data
        let at = 1 << 20;
        for (let n = 0; n < 1025; n++) {
          writeSync(fd, entry, 0, 40, at);
          at = Math.ceil((at + 40 + 0xffff) / 8) * 8;
        }
        writeSync(fd, Buffer.alloc(4096), 0, 4096, at + 1024 * 1024);
      } finally {
        closeSync(fd);
      }
    },
    expect: /snapshot table.*large/i,
  },
  { name: 'snapshot table past EOF', base: 'snap', damage: (i) => i.setU64(H.snapshotsOffset, TiB), expect: /snapshot.*(past the end|end of the file)/i },
  {
    name: 'snapshot L1 table past EOF, converting that snapshot',
    base: 'snap',
    damage: (i) => i.setU64(i.snapshotEntryAt(0), TiB),
    commands: ['convert-s1'],
    expect: /L1.*(past the end|end of the file)/i,
  },
  {
    name: 'snapshot l1_size 0xffffffff, converting that snapshot',
    base: 'snap',
    damage: (i) => i.setU32(i.snapshotEntryAt(0) + 8, 0xffffffff),
    commands: ['convert-s1'],
    expect: /L1.*large/i,
  },

  // --- backing chains ----------------------------------------------------------------------------------------
  {
    name: 'backing chain loop a -> b -> a',
    build: (c) => {
      const b = layer(c, 'b.qcow2');
      const a = layer(c, 'a.qcow2', 'b.qcow2');
      qemuImg(['rebase', '-u', '-b', 'a.qcow2', '-F', 'qcow2', b]);
      return a;
    },
    commands: CHAIN_COMMANDS,
    expect: /loop/i,
  },
  {
    name: 'backing chain loop a -> a',
    build: (c) => {
      const a = layer(c, 'a.qcow2');
      qemuImg(['rebase', '-u', '-b', 'a.qcow2', '-F', 'qcow2', a]);
      return a;
    },
    commands: CHAIN_COMMANDS,
    expect: /loop/i,
  },
  {
    name: 'backing chain loop through a symlink (a -> link -> a)',
    build: (c) => {
      const a = layer(c, 'a.qcow2');
      symlinkSync('a.qcow2', c.path('link.qcow2'));
      qemuImg(['rebase', '-u', '-b', 'link.qcow2', '-F', 'qcow2', a]);
      return a;
    },
    commands: CHAIN_COMMANDS,
    names: 'link.qcow2',
    expect: /loop/i,
  },
  {
    name: 'backing chain 100 layers deep (limit 64)',
    build: (c) => {
      let below = layer(c, 'layer-000.qcow2');
      for (let n = 1; n <= 100; n++) below = layer(c, `layer-${String(n).padStart(3, '0')}.qcow2`, below.split('/').pop());
      return below;
    },
    commands: CHAIN_COMMANDS,
    names: 'layer-',
    expect: /deep|depth|64/i,
  },
  {
    name: 'missing backing file',
    build: (c) => layer(c, 'a.qcow2', 'missing-base.qcow2'),
    commands: CHAIN_COMMANDS,
    expect: /missing-base\.qcow2/,
  },
];

hostileSuite('hostile tables and chains: qcow refuses what the metadata gets wrong, in one line', cases);
