import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/**
 * A small, independent editor for the header extension area of a qcow2 file, written from the published format
 * description (docs/interop/qcow2.txt layout: big-endian fields, extensions of `type u32, length u32, data`
 * padded to 8 bytes, ended by type 0). Tests use it to add unknown extensions or drop known ones from images
 * that qemu-img made.
 */

/** Known extension types, for readable tests. */
export const HeaderExtensionType = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureNameTable: 0x6803f857,
  bitmaps: 0x23852875,
  fullDiskEncryption: 0x0537be77,
  externalDataFile: 0x44415441,
} as const;

export interface HeaderExtension {
  type: number;
  data: Buffer;
}

export interface HeaderArea {
  version: number;
  clusterSize: number;
  /** Where the extension area starts: 72 for version 2, header_length for version 3. */
  extensionsStart: number;
  extensions: HeaderExtension[];
  /** The backing file name bytes, or null when the image has none. */
  backingName: Buffer | null;
}

function readFirstCluster(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(104);
    readSync(fd, head, 0, head.length, 0);
    if (head.readUInt32BE(0) !== 0x514649fb) throw new Error(`${path}: not a qcow2 file`);
    const clusterSize = 2 ** head.readUInt32BE(20);
    const cluster = Buffer.alloc(clusterSize);
    readSync(fd, cluster, 0, clusterSize, 0);
    return cluster;
  } finally {
    closeSync(fd);
  }
}

function parse(cluster: Buffer): HeaderArea {
  const version = cluster.readUInt32BE(4);
  const clusterSize = cluster.length;
  const extensionsStart = version >= 3 ? cluster.readUInt32BE(100) : 72;
  const extensions: HeaderExtension[] = [];
  let at = extensionsStart;
  while (at + 8 <= clusterSize) {
    const type = cluster.readUInt32BE(at);
    const length = cluster.readUInt32BE(at + 4);
    if (type === HeaderExtensionType.end) break;
    if (at + 8 + length > clusterSize) throw new Error(`header extension 0x${type.toString(16)} runs past the first cluster`);
    extensions.push({ type, data: Buffer.from(cluster.subarray(at + 8, at + 8 + length)) });
    at += 8 + Math.ceil(length / 8) * 8;
  }
  const backingOffset = Number(cluster.readBigUInt64BE(8));
  const backingSize = cluster.readUInt32BE(16);
  let backingName: Buffer | null = null;
  if (backingOffset !== 0) {
    if (backingOffset + backingSize > clusterSize) throw new Error('backing file name is outside the first cluster');
    backingName = Buffer.from(cluster.subarray(backingOffset, backingOffset + backingSize));
  }
  return { version, clusterSize, extensionsStart, extensions, backingName };
}

/** The header extensions and backing name of a qcow2 file. */
export function readHeaderArea(path: string): HeaderArea {
  return parse(readFirstCluster(path));
}

/**
 * Rewrites the extension area of a qcow2 file: `edit` gets the current extensions and returns the new list.
 * The extensions are laid out from the start of the area, then the end marker, then the backing file name
 * (its offset in the header is updated); the rest of the first cluster is zeroed.
 */
export function rewriteHeaderExtensions(path: string, edit: (extensions: HeaderExtension[]) => HeaderExtension[]): void {
  const cluster = readFirstCluster(path);
  const area = parse(cluster);
  const extensions = edit(area.extensions.map((e) => ({ type: e.type, data: Buffer.from(e.data) })));
  const out = Buffer.from(cluster);
  out.fill(0, area.extensionsStart);
  let at = area.extensionsStart;
  const need = (bytes: number): void => {
    if (at + bytes > out.length) throw new Error(`header extensions do not fit in the ${out.length}-byte first cluster`);
  };
  for (const ext of extensions) {
    const padded = Math.ceil(ext.data.length / 8) * 8;
    need(8 + padded);
    out.writeUInt32BE(ext.type >>> 0, at);
    out.writeUInt32BE(ext.data.length, at + 4);
    ext.data.copy(out, at + 8);
    at += 8 + padded;
  }
  need(8);
  at += 8; // end marker: type 0, length 0 (already zero)
  if (area.backingName) {
    need(area.backingName.length);
    area.backingName.copy(out, at);
    out.writeBigUInt64BE(BigInt(at), 8);
    out.writeUInt32BE(area.backingName.length, 16);
  }
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, out, 0, out.length, 0);
  } finally {
    closeSync(fd);
  }
}

/** Adds an extension of an unknown type in front of the existing ones (readers must skip it). */
export function addUnknownHeaderExtension(path: string, type: number, data: Buffer): void {
  rewriteHeaderExtensions(path, (exts) => [{ type, data }, ...exts]);
}

/** Removes every extension of `type` (e.g. the backing format, leaving a backing file without a format). */
export function dropHeaderExtension(path: string, type: number): void {
  rewriteHeaderExtensions(path, (exts) => exts.filter((e) => e.type !== type));
}
