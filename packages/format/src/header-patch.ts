import { DiskError } from '@q/raw';
import { HEADER_FIELDS, HEADER_V2_FIELDS_END, type HeaderField } from './header-fields.js';
import { encodeHeader, type QcowHeader } from './header.js';

/** Bytes to write at `offset` in the image file. */
export interface HeaderPatch {
  offset: number;
  bytes: Uint8Array;
}

/**
 * The bytes of some header fields as `header` holds them, for changing them in place without rewriting the rest
 * of the header (e.g. the refcount table's offset and size when the table moves, the incompatible feature bits when
 * the dirty or corrupt bit changes). The fields must be adjacent, so that one write switches them together: the
 * spec's "update the header fields in one write" for table switches, which leaves a crash either the old or the
 * new values (they share a sector), never a mix. The bytes come from encodeHeader, so a patch can never disagree
 * with a whole header written from the same values.
 */
export function encodeHeaderFields(header: QcowHeader, fields: readonly HeaderField[]): HeaderPatch {
  if (fields.length === 0) throw new DiskError('E_INVALID', 'no header fields to encode');
  const sorted = [...fields].sort((a, b) => HEADER_FIELDS[a].at - HEADER_FIELDS[b].at);
  const first = HEADER_FIELDS[sorted[0]!];
  let end = first.at;
  for (const name of sorted) {
    const field = HEADER_FIELDS[name];
    if (field.at !== end) throw new DiskError('E_INVALID', `header fields ${sorted.join(', ')} are not adjacent`);
    end = field.at + field.bytes;
  }
  const length = header.version === 3 ? header.headerLength : HEADER_V2_FIELDS_END;
  if (end > length) {
    throw new DiskError('E_INVALID', `header field ${sorted[sorted.length - 1]} is not in a version ${header.version} header of ${length} bytes`);
  }
  return { offset: first.at, bytes: encodeHeader(header).slice(first.at, end) };
}
