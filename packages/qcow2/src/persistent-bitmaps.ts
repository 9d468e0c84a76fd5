import { bitmapDataCluster, bitmapTableSize, DirtyBitmap, readBitmap } from '@q/bitmaps';
import {
  AUTOCLEAR_BITMAPS,
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_IN_USE,
  BITMAP_TYPE_DIRTY_TRACKING,
  encodeBitmapDirectory,
  encodeBitmapsExtension,
  encodeBitmapTable,
  EXT_BITMAPS,
  type BitmapEntry,
  type BitmapTableEntry,
} from '@q/format';
import { DiskError } from '@q/raw';
import type { RefcountStore } from '@q/refcount';
import { checkNewBitmap, tracksBitmap, usableBitmap } from './bitmap-rules.js';
import type { HeaderState } from './header-state.js';
import type { ImageMetadata } from './image-metadata.js';
import type { TrackedFile } from './tracked-file.js';

/** What storing bitmaps needs from a writable image. */
export interface BitmapStoreParts {
  file: TrackedFile;
  header: HeaderState;
  refcounts: RefcountStore;
  metadata: ImageMetadata;
  clusterSize: number;
  /** Writes back refcounts (and syncs them unless refcounts are lazy). */
  syncRefcounts(): Promise<void>;
}

/** One bitmap of the directory: its entry as stored, and its bits once loaded (maintained, or being changed). */
interface Slot {
  entry: BitmapEntry;
  bits?: DirtyBitmap;
  /** The data clusters of its stored copy (known once loaded), freed when a new copy replaces it. */
  dataClusters?: number[];
  /** Its bits follow every change to the disk (an enabled, consistent bitmap). */
  tracking: boolean;
  /** Its bits or flags changed since it was stored. */
  changed: boolean;
}

/**
 * The persistent bitmaps of a writable image, with QEMU's in_use protocol: enabled ones are loaded at open;
 * before the first change to the disk they are marked in_use on disk (so a crash leaves them marked
 * inconsistent, never silently wrong); every change sets their bits in memory; `store` writes them to new
 * clusters, switches the directory (in_use cleared) and frees the old clusters. Disabled and inconsistent
 * bitmaps are carried over untouched. Management (add, remove, clear, enable, disable, merge) commits at once.
 * A crash at any point leaks at worst: references become durable only after the refcounts they need.
 */
export class PersistentBitmaps {
  private readonly parts: BitmapStoreParts;
  private slots: Slot[];
  private inUse = false;

  private constructor(parts: BitmapStoreParts, slots: Slot[]) {
    this.parts = parts;
    this.slots = slots;
  }

  static async load(parts: BitmapStoreParts): Promise<PersistentBitmaps> {
    const slots: Slot[] = [];
    for (const entry of parts.metadata.bitmaps ?? []) {
      const slot: Slot = { entry, tracking: tracksBitmap(entry), changed: false };
      if (slot.tracking) await loadSlot(parts, slot);
      slots.push(slot);
    }
    return new PersistentBitmaps(parts, slots);
  }

  /** Whether the image keeps bitmaps (its autoclear bit must then stay set). */
  get kept(): boolean {
    return this.slots.length > 0;
  }

  /** The in-memory bits of a bitmap this writer maintains (undefined for disabled or inconsistent ones). */
  live(name: string): DirtyBitmap | undefined {
    const slot = this.find(name);
    return slot?.tracking === true ? slot.bits : undefined;
  }

  /** Sets the bits of `[offset, offset + length)` in every maintained bitmap; `beginChanges` came first. */
  markDirty(offset: number, length: number): void {
    for (const slot of this.slots) if (slot.tracking) slot.bits!.setRange(offset, length);
  }

  /** Marks every maintained bitmap wholly dirty: a change whose ranges cannot be told (snapshot switch, emptying). */
  markAllDirty(): void {
    for (const slot of this.slots) if (slot.tracking) slot.bits!.setAll();
  }

  /** Whether the next change must first mark the maintained bitmaps in_use. */
  get needsBegin(): boolean {
    return !this.inUse && this.slots.some((slot) => slot.tracking);
  }

  /** Before a change: the maintained bitmaps become in_use on disk (a new directory, synced). */
  async beginChanges(): Promise<void> {
    if (!this.needsBegin) return;
    await this.writeDirectory(this.slots.map(({ entry, tracking }) => (tracking ? { ...entry, flags: entry.flags | BITMAP_FLAG_IN_USE } : entry)));
    this.inUse = true;
  }

  /** At close: stores the maintained bitmaps when changes marked them in_use; otherwise the image stays as it was. */
  async store(): Promise<void> {
    if (this.inUse || this.slots.some((slot) => slot.changed)) await this.commit([]);
  }

  /** qemu-img bitmap --add: a new, clean bitmap (enabled unless `disabled`). */
  async add(name: string, granularity: number, disabled: boolean): Promise<void> {
    const { header, metadata, clusterSize } = this.parts;
    checkNewBitmap(this.slots.map((slot) => slot.entry), name, granularity, header.header.version);
    const bits = new DirtyBitmap(metadata.header.size, granularity);
    const entry: BitmapEntry = {
      tableOffset: 0,
      tableSize: bitmapTableSize(bits.size, granularity, clusterSize),
      flags: disabled ? 0 : BITMAP_FLAG_AUTO,
      type: BITMAP_TYPE_DIRTY_TRACKING,
      granularityBits: Math.log2(granularity),
      name,
      extraData: new Uint8Array(0),
    };
    this.slots.push({ entry, bits, dataClusters: [], tracking: !disabled, changed: true });
    await this.commit([]);
  }

  /** qemu-img bitmap --remove: the bitmap's entry goes, then its clusters are freed (inconsistent ones too). */
  async remove(name: string): Promise<void> {
    const slot = this.named(name);
    // An inconsistent bitmap's table may not load: then only the table itself is freed (its data leaks).
    if (slot.dataClusters === undefined && slot.entry.tableOffset !== 0) await loadSlot(this.parts, slot).catch(() => undefined);
    this.slots = this.slots.filter((other) => other !== slot);
    await this.commit(storedClusters(slot, this.parts.clusterSize));
  }

  /** qemu-img bitmap --clear: every bit clear. */
  async clear(name: string): Promise<void> {
    const slot = await this.usable(name);
    slot.bits!.clear();
    slot.changed = true;
    await this.commit([]);
  }

  /** qemu-img bitmap --enable / --disable: whether the bitmap follows changes to the disk. */
  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const slot = await this.usable(name);
    slot.entry = { ...slot.entry, flags: enabled ? slot.entry.flags | BITMAP_FLAG_AUTO : slot.entry.flags & ~BITMAP_FLAG_AUTO };
    slot.tracking = enabled;
    slot.changed = true;
    await this.commit([]);
  }

  /** qemu-img bitmap --merge: sets in `name` every bit set in `source` (a bitmap of a disk of the same size). */
  async merge(name: string, source: DirtyBitmap): Promise<void> {
    const slot = await this.usable(name);
    if (source.size !== slot.bits!.size) {
      throw new DiskError('E_INVALID', `Bitmaps are of different sizes (destination size is ${slot.bits!.size}, source size is ${source.size}) and can't be merged`);
    }
    slot.bits!.merge(source);
    slot.changed = true;
    await this.commit([]);
  }

  /**
   * Before the disk's size changes: every bitmap is loaded (an inconsistent one refuses the resize) and marked
   * in_use on disk, since its table is sized by the disk; `finishResize` stores them at the new size. A crash in
   * between leaves them in_use (QEMU does not load an in_use bitmap's data, so the old size harms nothing).
   */
  async beginResize(): Promise<void> {
    for (const slot of this.slots) {
      if (!usableBitmap(slot.entry)) throw new DiskError('E_UNSUPPORTED', `Bitmap '${slot.entry.name}' is inconsistent and cannot be used`);
      if (slot.bits === undefined) await loadSlot(this.parts, slot);
    }
    if (this.slots.length === 0) return;
    await this.writeDirectory(this.slots.map(({ entry }) => ({ ...entry, flags: entry.flags | BITMAP_FLAG_IN_USE })));
    this.inUse = true;
  }

  /** After the disk's size changed to `size`: each bitmap keeps its bits up to the new end, clean past the old one (as QEMU). */
  async finishResize(size: number): Promise<void> {
    if (this.slots.length === 0) return;
    for (const slot of this.slots) {
      const old = slot.bits!;
      const resized = new DirtyBitmap(size, old.granularity);
      resized.bytes.set(old.bytes.subarray(0, Math.min(old.bytes.length, resized.bytes.length)));
      // Bits past the new end (a shrink) must be clear, as the spec asks of the tail.
      if (resized.bits < old.bits) resized.clearFrom(resized.bits);
      slot.bits = resized;
      slot.changed = true;
    }
    await this.commit([]);
  }

  private find(name: string): Slot | undefined {
    return this.slots.find((slot) => slot.entry.name === name);
  }

  /** The bitmap called `name`; E_NO_SUCH (qemu-img's message) when there is none. */
  private named(name: string): Slot {
    const slot = this.find(name);
    if (slot === undefined) throw new DiskError('E_NO_SUCH', `Dirty bitmap '${name}' not found`);
    return slot;
  }

  private async usable(name: string): Promise<Slot> {
    const slot = this.named(name);
    if (!usableBitmap(slot.entry)) throw new DiskError('E_INVALID', `Bitmap '${name}' is inconsistent and cannot be used`);
    if (slot.bits === undefined) await loadSlot(this.parts, slot);
    return slot;
  }

  /**
   * Writes every bitmap that changed (or is maintained while in_use) to new clusters, durable; then the directory
   * naming them, in_use cleared, and the header; then frees their old clusters and `alsoFree`. In that order a
   * crash leaks, never loses a bitmap or leaves one pointing at freed clusters.
   */
  private async commit(alsoFree: number[]): Promise<void> {
    const { refcounts, file, clusterSize } = this.parts;
    const freed = [...alsoFree];
    const written = new Map<Slot, { tableOffset: number; tableSize: number; dataClusters: number[] }>();
    for (const slot of this.slots) {
      if (!slot.changed && !(slot.tracking && this.inUse)) continue;
      written.set(slot, await this.writeBitmap(slot.bits!));
      freed.push(...storedClusters(slot, clusterSize));
    }
    await this.parts.syncRefcounts();
    await file.flush();
    await this.writeDirectory(
      this.slots.map((slot) => {
        const stored = written.get(slot);
        // Slots keep their entries without the in_use flag this writer sets while it maintains them.
        return stored === undefined ? slot.entry : { ...slot.entry, tableOffset: stored.tableOffset, tableSize: stored.tableSize };
      }),
    );
    for (const offset of freed) await refcounts.adjust(offset / clusterSize, -1);
    for (const [slot, stored] of written) {
      slot.entry = { ...slot.entry, tableOffset: stored.tableOffset, tableSize: stored.tableSize };
      slot.dataClusters = stored.dataClusters;
      slot.changed = false;
    }
    this.inUse = false;
  }

  /** Writes a bitmap's data clusters (all-zero ones become entries of 0) and its table to new clusters. */
  private async writeBitmap(bits: DirtyBitmap): Promise<{ tableOffset: number; tableSize: number; dataClusters: number[] }> {
    const { refcounts, file, clusterSize } = this.parts;
    const size = bitmapTableSize(bits.size, bits.granularity, clusterSize);
    const entries: BitmapTableEntry[] = [];
    const dataClusters: number[] = [];
    for (let index = 0; index < size; index++) {
      const data = bitmapDataCluster(bits, index, clusterSize);
      if (data === undefined) {
        entries.push({ kind: 'zeros' });
        continue;
      }
      const offset = await refcounts.allocate(1);
      await file.write(data, offset);
      dataClusters.push(offset);
      entries.push({ kind: 'data', offset });
    }
    const table = encodeBitmapTable(entries);
    const tableOffset = await refcounts.allocate(Math.ceil(table.length / clusterSize));
    await file.write(table, tableOffset);
    return { tableOffset, tableSize: size, dataClusters };
  }

  /**
   * Writes `entries` as a new directory, switches the header's bitmaps extension to it (cluster 0 in one write,
   * synced), then frees the old directory: never an in-place rewrite, so a torn write cannot break the directory.
   * No entries: the extension goes and the autoclear bit is cleared, as qemu-img leaves an image without bitmaps.
   */
  private async writeDirectory(entries: BitmapEntry[]): Promise<void> {
    const { refcounts, file, header, metadata, clusterSize } = this.parts;
    const old = metadata.bitmaps === undefined ? undefined : metadata.extensions.bitmaps;
    const others = header.extensions.filter((extension) => extension.type !== EXT_BITMAPS);
    let ext: { nbBitmaps: number; directorySize: number; directoryOffset: number } | undefined;
    if (entries.length > 0) {
      const bytes = encodeBitmapDirectory(entries);
      const offset = await refcounts.allocate(Math.ceil(bytes.length / clusterSize));
      await this.parts.syncRefcounts();
      await file.write(bytes, offset);
      await file.flush();
      ext = { nbBitmaps: entries.length, directorySize: bytes.length, directoryOffset: offset };
    }
    // The bitmaps extension keeps its place; a new one goes after the extensions QEMU writes before it.
    const data = ext === undefined ? undefined : encodeBitmapsExtension(ext);
    const at = header.extensions.findIndex((extension) => extension.type === EXT_BITMAPS);
    const extensions = data === undefined ? others : at >= 0 ? header.extensions.map((e) => (e.type === EXT_BITMAPS ? { type: EXT_BITMAPS, data } : e)) : [...others, { type: EXT_BITMAPS, data }];
    const bits = header.header.autoclearFeatures;
    const autoclearFeatures = ext === undefined ? bits & ~AUTOCLEAR_BITMAPS : bits | AUTOCLEAR_BITMAPS;
    await header.rewriteCluster({ extensions, header: { autoclearFeatures } });
    if (old !== undefined && old.directoryOffset !== 0) {
      for (let i = 0; i < Math.ceil(old.directorySize / clusterSize); i++) await refcounts.adjust(old.directoryOffset / clusterSize + i, -1);
    }
    metadata.extensions = { ...metadata.extensions, all: extensions, bitmaps: ext };
    metadata.bitmaps = ext === undefined ? undefined : entries;
  }
}

async function loadSlot(parts: BitmapStoreParts, slot: Slot): Promise<void> {
  const stored = await readBitmap(parts.file, slot.entry, parts.metadata.header.size, parts.clusterSize);
  slot.bits = stored.bitmap;
  slot.dataClusters = stored.dataClusters;
}

/** The clusters a bitmap's stored copy uses: its table and, once known, its data clusters. */
function storedClusters(slot: Slot, clusterSize: number): number[] {
  const { tableOffset, tableSize } = slot.entry;
  if (tableOffset === 0) return [...(slot.dataClusters ?? [])];
  const table = Array.from({ length: Math.ceil((tableSize * 8) / clusterSize) }, (_, i) => tableOffset + i * clusterSize);
  return [...table, ...(slot.dataClusters ?? [])];
}
