import { alignDown } from './export-info.js';

/** One request's worth of a larger range: where it lies, and whether it covers only part of a block. */
export interface RequestPiece {
  offset: number;
  length: number;
  /**
   * Present when the piece does not start and end on block boundaries: the whole block around it (cut at the
   * export's end), which a write must read, patch and write back, and a read must fetch and copy out of.
   */
  block?: { offset: number; length: number };
}

/**
 * Cuts `[offset, offset + length)` into requests a server accepts (the INFO extension's block size constraints:
 * offsets and lengths are multiples of the minimum block, payloads at most the maximum). The aligned middle goes
 * in pieces of at most `cap` bytes; an unaligned head or tail becomes a piece of its own, within one block. With a
 * minimum block of 1 nothing is unaligned and this only splits at `cap`. `cap` is a multiple of `minimumBlock`.
 */
export function requestPieces(offset: number, length: number, minimumBlock: number, cap: number, exportSize: number): RequestPiece[] {
  const pieces: RequestPiece[] = [];
  const end = offset + length;
  let at = offset;
  const partial = (pieceEnd: number): void => {
    const blockOffset = alignDown(at, minimumBlock);
    const blockLength = Math.min(minimumBlock, exportSize - blockOffset);
    pieces.push({ offset: at, length: pieceEnd - at, block: { offset: blockOffset, length: blockLength } });
    at = pieceEnd;
  };
  if (at % minimumBlock !== 0) partial(Math.min(end, alignDown(at, minimumBlock) + minimumBlock));
  // The last block of an export whose size is not a multiple of the minimum is whole when it ends at the export's end.
  const alignedEnd = end === exportSize ? end : alignDown(end, minimumBlock);
  while (at < alignedEnd) {
    const pieceLength = Math.min(cap, alignedEnd - at);
    pieces.push({ offset: at, length: pieceLength });
    at += pieceLength;
  }
  if (at < end) partial(end);
  return pieces;
}
