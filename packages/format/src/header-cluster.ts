import { DiskError } from '@q/raw';
import { encodeString } from './bytes.js';
import { encodeHeader, type QcowHeader } from './header.js';
import { encodeHeaderExtensions, type HeaderExtension } from './header-extensions.js';

/** What cluster 0 holds besides the fixed fields: the extensions in order and the backing file name. */
export interface HeaderClusterContents {
  header: QcowHeader;
  extensions: readonly HeaderExtension[];
  backingFileName?: string;
}

/** Cluster 0 as bytes, with the header that describes it (backing_file_offset/size filled in). */
export interface EncodedHeaderCluster {
  header: QcowHeader;
  bytes: Uint8Array;
}

/**
 * Lays out the whole first cluster (spec: "Header", "Header extensions"): the fixed fields, the extension area
 * with its end marker, then the backing file name, and zeros to the end of the cluster. Creating an image and
 * every change that rewrites extensions or the backing name (rebase, amend) go through here, so the layout has
 * one author. Everything must fit in the cluster: QEMU keeps it there and so must any writer.
 */
export function encodeHeaderCluster(contents: HeaderClusterContents, clusterSize: number): EncodedHeaderCluster {
  const extensionArea = encodeHeaderExtensions(contents.extensions);
  const name = contents.backingFileName === undefined ? undefined : encodeString(contents.backingFileName);
  const header: QcowHeader = {
    ...contents.header,
    backingFileOffset: name === undefined ? 0 : contents.header.headerLength + extensionArea.length,
    backingFileSize: name?.length ?? 0,
  };
  if (header.headerLength + extensionArea.length + (name?.length ?? 0) > clusterSize) {
    throw new DiskError('E_INVALID', 'the header, its extensions and the backing file name do not fit in one cluster');
  }
  const bytes = new Uint8Array(clusterSize);
  bytes.set(encodeHeader(header), 0);
  bytes.set(extensionArea, header.headerLength);
  if (name !== undefined) bytes.set(name, header.backingFileOffset);
  return { header, bytes };
}
