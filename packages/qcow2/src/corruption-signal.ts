import { DiskError, isDiskError, type BlockFile, type DiskErrorReason } from '@q/raw';
import type { HeaderState } from './header-state.js';

/**
 * Corrupt metadata met by a writable image (a pointer into metadata, past the file, unaligned...) marks the image
 * corrupt before anything else is written, as QEMU does: from then on it opens read-only until repaired. `header`
 * is the writable image's header (undefined when read-only: nothing is marked). Returns the error to throw,
 * saying so when the image was marked.
 */
export async function signalCorruption(header: HeaderState | undefined, file: BlockFile, error: unknown): Promise<unknown> {
  if (header === undefined || header.corrupt || !isMetadataCorruption(error)) return error;
  try {
    await header.setCorrupt();
    await file.flush();
  } catch {
    // The error being reported matters more than a failure to record it.
  }
  return new DiskError(error.code, `${error.message}; the image is now marked corrupt`, {
    file: error.file,
    offset: error.offset,
    reason: error.reason,
    cause: error,
  });
}

/**
 * Metadata found broken, which QEMU marks the image corrupt for, as opposed to the errors about compressed data
 * (see DiskErrorReason): a stream that does not decompress, or a descriptor whose data lies where none can. QEMU
 * reports those as I/O errors and leaves the image unmarked (checked with qemu-io 7.2: a bad zlib stream and a
 * compressed offset into the header or the L1 table leave the bit clear; a compressed L2 entry in an image with an
 * external data file sets it).
 */
function isMetadataCorruption(error: unknown): error is DiskError {
  return isDiskError(error) && error.code === 'E_CORRUPT' && !DATA_REASONS.has(error.reason);
}

/** Reasons under E_CORRUPT that concern compressed data, not the metadata: the image is not marked corrupt. */
const DATA_REASONS: ReadonlySet<DiskErrorReason | undefined> = new Set<DiskErrorReason>(['compressed-data', 'compressed-offset']);
