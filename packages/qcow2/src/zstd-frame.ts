/**
 * Length in bytes of the zstd frame at the start of `bytes` (RFC 8878, section 3.1.1), or undefined when the frame
 * runs past the end of `bytes` or is not a zstd frame. Decoders that insist on whole frames and nothing after
 * them need this, because a compressed cluster's data is followed by sector padding.
 */
export function zstdFrameLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < 6) return undefined;
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  if (magic >>> 4 === 0x184d2a5) {
    // Skippable frame: magic, u32 little-endian size, payload.
    if (bytes.length < 8) return undefined;
    const size = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
    return 8 + size <= bytes.length ? 8 + size : undefined;
  }
  if (magic !== 0xfd2fb528) return undefined;
  const descriptor = bytes[4]!;
  const contentSizeFlag = descriptor >>> 6;
  const singleSegment = (descriptor >>> 5) & 1;
  const checksum = (descriptor >>> 2) & 1;
  const dictionaryIdFlag = descriptor & 3;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]!;
  const dictionaryIdBytes = [0, 1, 2, 4][dictionaryIdFlag]!;
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  for (;;) {
    if (at + 3 > bytes.length) return undefined;
    const header = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    const last = header & 1;
    const type = (header >>> 1) & 3;
    const size = header >>> 3;
    if (type === 3) return undefined;
    at += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  at += checksum ? 4 : 0;
  return at <= bytes.length ? at : undefined;
}
