import {
  AUTOCLEAR_BITMAPS,
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_IN_USE,
  BITMAP_TABLE_ALL_ONES_LO,
  BITMAP_TABLE_OFFSET_HI_MASK,
  BITMAP_TABLE_OFFSET_LO_MASK,
  HEADER_PROBE_BYTES,
  bitmapTableEntryReserved,
  decodeBitmapDirectory,
  decodeHeader,
  decodeHeaderExtensions,
  hasQcowMagic,
  type BitmapEntry,
} from '@q/format';
import { DiskError, readExact, type BlockFile } from '@q/raw';
import { ExitError } from '../usage-error.js';

/** A persistent dirty bitmap read from the image file: one bit per `granularity` bytes, LSB first in each byte. */
export interface StoredBitmap {
  name: string;
  granularity: number;
  /** The bitmap records writes (the `auto` flag); a disabled one is served as stored. */
  enabled: boolean;
  bits: Uint8Array;
}

/** The most bitmap bytes loaded per bitmap: 32 TiB at 64 KiB granularity. A hostile header cannot make us hold more. */
const MAX_BITMAP_BYTES = 64 * 1024 * 1024;
/** QEMU's bounds on a bitmap's granularity (512 B to 2 GiB); type 1 is the only type (dirty tracking). */
const MIN_GRANULARITY_BITS = 9;
const MAX_GRANULARITY_BITS = 31;
const BITMAP_TYPE_DIRTY_TRACKING = 1;

/**
 * Loads the persistent bitmap `name` of the qcow2 image in `file` into memory, as QEMU does when it opens an image
 * (qcow2 spec "Bitmaps extension", "Bitmap directory", "Bitmap table"). Until @q/qcow2 maintains bitmaps itself
 * (issue 14) `qcow serve -B` reads them here, read-only, before the first write. Undefined when there is no such
 * bitmap: a raw file, an image without the bitmaps extension, or one whose autoclear bit says a writer that does
 * not know bitmaps has touched it, has none. A bitmap left `in_use` by a writer that died is refused, as qemu-nbd
 * refuses it; corrupt structures are DiskErrors (E_CORRUPT).
 */
export async function readStoredBitmap(file: BlockFile, name: string): Promise<StoredBitmap | undefined> {
  const entry = await findEntry(file, name);
  if (entry === undefined) return undefined;
  if ((entry.flags & BITMAP_FLAG_IN_USE) !== 0) throw new ExitError(`Bitmap '${name}' is inconsistent and cannot be used`, 1);
  return loadBits(file, entry.bitmap, entry.clusterBits, entry.virtualSize);
}

async function findEntry(file: BlockFile, name: string): Promise<{ bitmap: BitmapEntry; flags: number; clusterBits: number; virtualSize: number } | undefined> {
  const probe = new Uint8Array(HEADER_PROBE_BYTES);
  const got = await file.read(probe, 0);
  if (got < 4 || !hasQcowMagic(probe)) return undefined;
  const header = decodeHeader(probe.subarray(0, got));
  if ((header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n) return undefined;
  const cluster0 = new Uint8Array(Math.min(2 ** header.clusterBits, await file.size()));
  await readExact(file, cluster0, 0, 'header cluster');
  const extension = decodeHeaderExtensions(cluster0, header).bitmaps;
  if (extension === undefined) return undefined;
  const directory = new Uint8Array(extension.directorySize);
  await readExact(file, directory, extension.directoryOffset, 'bitmap directory');
  const bitmap = decodeBitmapDirectory(directory, extension.nbBitmaps).find((entry) => entry.name === name);
  return bitmap === undefined ? undefined : { bitmap, flags: bitmap.flags, clusterBits: header.clusterBits, virtualSize: header.size };
}

async function loadBits(file: BlockFile, entry: BitmapEntry, clusterBits: number, virtualSize: number): Promise<StoredBitmap> {
  const corrupt = (what: string): DiskError => new DiskError('E_CORRUPT', `bitmap '${entry.name}': ${what}`, { file: file.name });
  if (entry.type !== BITMAP_TYPE_DIRTY_TRACKING) throw corrupt(`unknown type ${entry.type}`);
  if (entry.granularityBits < MIN_GRANULARITY_BITS || entry.granularityBits > MAX_GRANULARITY_BITS) {
    throw corrupt(`granularity 2^${entry.granularityBits} is out of range`);
  }
  const granularity = 2 ** entry.granularityBits;
  const byteCount = Math.ceil(Math.ceil(virtualSize / granularity) / 8);
  if (byteCount > MAX_BITMAP_BYTES) throw new DiskError('E_TOO_LARGE', `bitmap '${entry.name}' needs ${byteCount} bytes in memory`, { file: file.name });
  const clusterSize = 2 ** clusterBits;
  // Each table entry stands for one cluster of bitmap bytes; the spec fixes the count from the bitmap's size.
  if (entry.tableSize !== Math.ceil(byteCount / clusterSize)) throw corrupt(`table size ${entry.tableSize} does not fit the image size`);
  if (entry.tableOffset % clusterSize !== 0) throw corrupt(`table offset ${entry.tableOffset} is not cluster aligned`);
  const table = new Uint8Array(entry.tableSize * 8);
  await readExact(file, table, entry.tableOffset, 'bitmap table');
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const bits = new Uint8Array(byteCount);
  for (let i = 0; i < entry.tableSize; i++) {
    const hi = view.getUint32(i * 8);
    const lo = view.getUint32(i * 8 + 4);
    if (bitmapTableEntryReserved(hi, lo)) throw corrupt(`table entry ${i} sets reserved bits`);
    const part = bits.subarray(i * clusterSize, Math.min((i + 1) * clusterSize, byteCount));
    const offset = (hi & BITMAP_TABLE_OFFSET_HI_MASK) * 2 ** 32 + (lo & BITMAP_TABLE_OFFSET_LO_MASK);
    if (offset === 0) {
      // No cluster: the part reads as all zeros, or all ones with bit 0 set.
      if ((lo & BITMAP_TABLE_ALL_ONES_LO) !== 0) part.fill(0xff);
      continue;
    }
    if ((lo & BITMAP_TABLE_ALL_ONES_LO) !== 0 || offset % clusterSize !== 0) throw corrupt(`table entry ${i} is invalid`);
    await readExact(file, part, offset, 'bitmap data');
  }
  return { name: entry.name, granularity, enabled: (entry.flags & BITMAP_FLAG_AUTO) !== 0, bits };
}
