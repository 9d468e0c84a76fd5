import { describe, expect, it } from 'vitest';
import { decodeL2Entry, L2_ZERO_LO } from '@q/format';
import { MemoryBlockFile, RawDisk, type BlockDevice } from '@q/raw';

/** Opens a backing file (each image closes its own when it closes), or undefined for none. */
type Backing = (() => Promise<BlockDevice>) | undefined;
import { defaultCreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { Qcow2Image } from './qcow2-image.js';

const KiB = 1024;
const CLUSTER = 64 * KiB;
const SIZE = 4 * 1024 * KiB;

/** A memory file that keeps its bytes when closed, so the image can be reopened and its bytes inspected. */
class KeptFile extends MemoryBlockFile {
  override async close(): Promise<void> {}
}

function filled(length: number, pattern: number): Uint8Array {
  return new Uint8Array(length).fill(pattern);
}

async function guest(image: Qcow2Image): Promise<Uint8Array> {
  const bytes = new Uint8Array(image.size);
  await image.read(bytes, 0);
  return bytes;
}

/** How many entries of the L2 tables at `tables` carry the zero flag (standard entries: bit 0). */
function zeroFlags(bytes: Uint8Array, tables: number[]): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let flagged = 0;
  for (const table of tables) {
    for (let index = 0; index < CLUSTER / 8; index++) if ((view.getUint32(table + index * 8 + 4) & L2_ZERO_LO) !== 0) flagged++;
  }
  return flagged;
}

/**
 * An image with data, a snapshot, then zero writes over clusters the snapshot keeps (kept allocated and not),
 * then a second snapshot: what a downgrade must expand in the active tree and in each snapshot's.
 */
async function withSnapshots(backing: Backing): Promise<KeptFile> {
  const file = new KeptFile(new Uint8Array(0), { deallocate: true });
  await createQcow2(file, { ...defaultCreateOptions(SIZE), backingFile: backing === undefined ? undefined : 'base', backingFormat: backing === undefined ? undefined : 'raw' });
  const image = await Qcow2Image.open(file, { writable: true, openBacking: backing });
  await image.write(filled(8 * CLUSTER, 0x11), 0);
  await image.writeZeroes(2 * CLUSTER, CLUSTER);
  await image.writeZeroes(12 * CLUSTER, 2 * CLUSTER, { unmap: true });
  await image.createSnapshot('s1');
  await image.writeZeroes(5 * CLUSTER, 2 * CLUSTER);
  await image.writeZeroes(30 * CLUSTER, CLUSTER);
  await image.createSnapshot('s2');
  await image.writeZeroes(0, CLUSTER, { unmap: true });
  await image.close();
  return file;
}

describe('downgrade to v2: zero clusters of every tree', () => {
  for (const backed of [false, true]) {
    it(`keeps the active state and both snapshots and leaves no zero flag (${backed ? 'over a backing file' : 'no backing file'})`, async () => {
      const backing: Backing = backed ? () => RawDisk.open(new MemoryBlockFile(filled(SIZE, 0x77), { writable: false })) : undefined;
      const file = await withSnapshots(backing);
      const open = async (snapshot?: string): Promise<Qcow2Image> => Qcow2Image.open(new MemoryBlockFile(file.contents().slice(), { writable: false }), { snapshot, openBacking: backing });
      const before = await Promise.all([undefined, 's1', 's2'].map(async (name) => guest(await open(name))));

      const image = await Qcow2Image.open(file, { writable: true, openBacking: backing });
      await image.amend({ version: 2 });
      await image.close();

      const after = await Promise.all([undefined, 's1', 's2'].map(async (name) => guest(await open(name))));
      for (let i = 0; i < 3; i++) expect(Buffer.compare(after[i]!, before[i]!), ['active', 's1', 's2'][i]).toBe(0);
      const reopened = await open();
      expect(reopened.metadata.header.version).toBe(2);
      // Every table of every tree, found by walking the L1 tables the image names.
      const bytes = file.contents();
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const l1s = [reopened.metadata.header.l1TableOffset, ...reopened.snapshots.map((snapshot) => snapshot.l1TableOffset)];
      const tables = new Set<number>();
      for (const l1 of l1s) {
        for (let index = 0; index < SIZE / (CLUSTER * (CLUSTER / 8)) + 1; index++) {
          const entry = Number(view.getBigUint64(l1 + index * 8) & 0x00ff_ffff_ffff_fe00n);
          if (entry !== 0) tables.add(entry);
        }
      }
      expect(tables.size).toBeGreaterThan(1);
      expect(zeroFlags(bytes, [...tables])).toBe(0);
      // Without a backing file no zero cluster needs a cluster of zeros: the first cluster is unallocated in every tree.
      const first = decodeL2Entry(new DataView(bytes.buffer, bytes.byteOffset + [...tables][0]!, CLUSTER), 0, { clusterBits: 16, extendedL2: false, externalDataFile: false });
      if (!backed) expect(first.hostOffset).toBe(0);
    });
  }
});
