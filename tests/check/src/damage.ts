import { COMPRESSED, COPIED, ImageEditor, OFFSET_MASK } from './image-editor.js';
import type { BaseImage } from './base-images.js';

/**
 * Ways to damage a clean image, each the kind of state a crash, a bug or a hostile file leaves. A recipe returns
 * false when the image has nothing it can damage (no compressed cluster, say); the test then skips that pair.
 */
export interface Damage {
  name: string;
  applies?(traits: BaseImage['traits']): boolean;
  apply(image: ImageEditor): boolean;
}

function l1Table(image: ImageEditor): number {
  return Math.floor(image.l1Offset / image.clusterSize);
}

export const damages: Damage[] = [
  { name: 'none', apply: () => true },
  {
    name: 'a leaked cluster past the end',
    apply: (image) => (image.appendLeakedCluster(), true),
  },
  {
    name: 'a data cluster refcount raised by one (leak)',
    applies: (traits) => traits.oneBitRefcounts !== true && traits.dataFile !== true,
    apply: (image) => {
      const at = image.firstDataEntry();
      if (at === undefined) return false;
      const cluster = Number((image.l2Entry(...at) & OFFSET_MASK) / BigInt(image.clusterSize));
      image.setRefcount(cluster, image.refcount(cluster) + 1n);
      return true;
    },
  },
  {
    name: 'a data cluster refcount dropped to zero',
    applies: (traits) => traits.dataFile !== true,
    apply: (image) => {
      const at = image.firstDataEntry();
      if (at === undefined) return false;
      image.setRefcount(Number((image.l2Entry(...at) & OFFSET_MASK) / BigInt(image.clusterSize)), 0n);
      return true;
    },
  },
  {
    name: 'the L1 table refcount dropped to zero',
    apply: (image) => (image.setRefcount(l1Table(image), 0n), true),
  },
  {
    name: 'COPIED cleared on an L2 entry',
    applies: (traits) => traits.snapshots !== true,
    apply: (image) => {
      const at = image.firstDataEntry();
      if (at === undefined) return false;
      const offset = image.l2EntryAt(...at);
      image.setU64(offset, image.u64(offset) & ~COPIED);
      return true;
    },
  },
  {
    name: 'COPIED cleared on an L1 entry',
    applies: (traits) => traits.snapshots !== true,
    apply: (image) => {
      for (let i = 0; i < image.l1Size; i++) {
        const entry = image.l1Entry(i);
        if ((entry & OFFSET_MASK) === 0n) continue;
        image.setU64(image.l1EntryAt(i), entry & ~COPIED);
        return true;
      }
      return false;
    },
  },
  {
    name: 'a compressed cluster refcount raised by one (leak)',
    applies: (traits) => traits.compressed === true,
    apply: (image) => {
      const at = image.firstCompressedEntry();
      if (at === undefined) return false;
      const cluster = image.compressedCluster(image.l2Entry(...at));
      image.setRefcount(cluster, image.refcount(cluster) + 1n);
      return true;
    },
  },
  {
    name: 'an L2 entry pointing past the end of the file',
    applies: (traits) => traits.dataFile !== true,
    apply: (image) => {
      const at = image.firstDataEntry();
      if (at === undefined) return false;
      const offset = image.l2EntryAt(...at);
      const far = BigInt(image.clusters + 64) * BigInt(image.clusterSize);
      image.setU64(offset, (image.u64(offset) & ~OFFSET_MASK) | far);
      return true;
    },
  },
  {
    name: 'an L2 entry pointing at an unaligned offset',
    applies: (traits) => traits.extendedL2 !== true,
    apply: (image) => {
      const at = image.firstDataEntry();
      if (at === undefined) return false;
      const offset = image.l2EntryAt(...at);
      image.setU64(offset, image.u64(offset) + 0x200n);
      return true;
    },
  },
  {
    name: 'two L2 entries sharing one data cluster',
    applies: (traits) => traits.dataFile !== true && traits.compressed !== true,
    apply: (image) => {
      const first = image.firstDataEntry();
      const free = image.firstUnallocatedEntry();
      if (first === undefined || free === undefined) return false;
      image.setU64(image.l2EntryAt(...free), image.l2Entry(...first));
      return true;
    },
  },
  {
    name: 'a compressed entry marked COPIED',
    applies: (traits) => traits.compressed === true,
    apply: (image) => {
      const at = image.firstCompressedEntry();
      if (at === undefined) return false;
      const offset = image.l2EntryAt(...at);
      image.setU64(offset, image.u64(offset) | COPIED | COMPRESSED);
      return true;
    },
  },
];
