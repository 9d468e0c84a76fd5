import { stat } from 'node:fs';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  BITMAP_FLAG_AUTO,
  BITMAP_FLAG_IN_USE,
  COMPAT_LAZY_REFCOUNTS,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTENDED_L2,
  type SnapshotEntry,
} from '@q/format';
import { Qcow2Image } from '@q/qcow2';
import { cliStore } from './cli-store.js';
import { RawDisk, type BlockDevice, type BlockFile } from '@q/raw';

/** `qemu-img info --output=json`'s object, keys in the order qemu-img 7.2 prints them. */
export type ImageInfoJson = Record<string, unknown>;

/** One snapshot as qemu-img's JSON describes it (info's "snapshots"), keys in its order. */
export function snapshotInfo(snapshot: SnapshotEntry): Record<string, unknown> {
  return {
    ...(snapshot.icount === undefined ? {} : { icount: snapshot.icount }),
    'vm-clock-nsec': snapshot.vmClockNanoseconds % 1e9,
    name: snapshot.name,
    'date-sec': snapshot.dateSeconds,
    'date-nsec': snapshot.dateNanoseconds,
    'vm-clock-sec': Math.floor(snapshot.vmClockNanoseconds / 1e9),
    id: snapshot.id,
    'vm-state-size': snapshot.vmStateSize,
  };
}

/** Builds qemu-img's info object for one layer; `filename` is the name as the user (or the overlay) gave it. */
export async function imageInfo(device: BlockDevice, filename: string): Promise<ImageInfoJson> {
  const info: ImageInfoJson = {};
  const image = device instanceof Qcow2Image ? device : undefined;
  const metadata = image?.metadata;
  if (metadata?.backingFileName !== undefined && metadata.extensions.backingFormat !== undefined) {
    info['backing-filename-format'] = metadata.extensions.backingFormat;
  }
  if (metadata !== undefined && metadata.snapshots.length > 0) {
    info['snapshots'] = metadata.snapshots.map(snapshotInfo);
  }
  info['virtual-size'] = device.size;
  info['filename'] = filename;
  if (metadata !== undefined) info['cluster-size'] = metadata.geometry.clusterSize;
  info['format'] = device.format;
  const actual = await actualSize(device);
  if (actual !== undefined) info['actual-size'] = actual;
  if (image !== undefined) info['format-specific'] = { type: 'qcow2', data: qcow2Specific(image) };
  if (metadata?.backingFileName !== undefined) {
    info['full-backing-filename'] = cliStore().resolve(layerPath(device), metadata.backingFileName);
    info['backing-filename'] = metadata.backingFileName;
  }
  info['dirty-flag'] = metadata !== undefined && (metadata.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
  return info;
}

function qcow2Specific(image: Qcow2Image): Record<string, unknown> {
  const { header, extensions, bitmaps } = image.metadata;
  if (header.version === 2) {
    return { compat: '0.10', 'compression-type': 'zlib', 'refcount-bits': 16 };
  }
  const data: Record<string, unknown> = {
    compat: '1.1',
    'compression-type': image.compressionType,
    'lazy-refcounts': (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
  };
  if (bitmaps !== undefined) {
    data['bitmaps'] = bitmaps.map((bitmap) => ({
      flags: [
        ...((bitmap.flags & BITMAP_FLAG_IN_USE) !== 0 ? ['in-use'] : []),
        ...((bitmap.flags & BITMAP_FLAG_AUTO) !== 0 ? ['auto'] : []),
      ],
      name: bitmap.name,
      granularity: 2 ** bitmap.granularityBits,
    }));
  }
  data['refcount-bits'] = 2 ** header.refcountOrder;
  if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n) {
    if (extensions.dataFile !== undefined) data['data-file'] = extensions.dataFile;
    data['data-file-raw'] = (header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  }
  data['corrupt'] = (header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n;
  data['extended-l2'] = (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n;
  return data;
}

/** The file a layer reads from, where the layer has one of its own (a qcow2 image, a raw file). */
function layerFile(device: BlockDevice): BlockFile | undefined {
  return device instanceof Qcow2Image || device instanceof RawDisk ? device.file : undefined;
}

/** The name of the file a layer reads from (not `FILE@SNAP`). */
export function layerPath(device: BlockDevice): string {
  return layerFile(device)?.name ?? device.name;
}

/**
 * Bytes the file occupies on disk (allocated blocks), as qemu-img's actual-size: asked of the open file where it
 * can tell (an fstat, blocking where the file's calls block), else a stat of the name. node:fs's callback stat:
 * loading node:fs/promises costs `qcow info` 4-5 ms at start.
 */
function actualSize(device: BlockDevice): Promise<number | undefined> {
  const file = layerFile(device);
  if (file?.allocatedSize !== undefined) return file.allocatedSize().catch(() => undefined);
  if (file !== undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => stat(device.name, (error, stats) => resolve(error === null ? stats.blocks * 512 : undefined)));
}
